"""Spec files: read (``reader``), validate (``validate``), rewrite FAI-PEP's legacy forms
(``legacy``), expand into cases (``load``, ``model``, ``placeholders``). Pure: no pytest.

The package itself imports nothing, so that the plugin's start-up can reach the constants of
``reader`` and ``model`` without loading the validator.
"""
