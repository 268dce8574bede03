"""A fake of Monsoon Solutions' ``Monsoon`` package (HVPM/LVPM power monitors), at its API:
the same modules, classes and calls, and the same habit of printing "Unable to find device"
instead of raising. It plays the main-channel current trace (mA, 5 kHz) stored as .npy in
$FAKE_MONSOON_TRACE; $FAKE_MONSOON_SERIALS lists the connected meters ("" for none)."""
