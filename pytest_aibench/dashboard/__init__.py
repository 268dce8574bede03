"""``aibench serve``: the lab's dashboard over a history store (app.py: routes and the upload
API; views.py: what each page shows, as plain data; templates/ and static/: the pages, whose
charts are drawn by plotly.js, served from the plotly package so that a page needs no network).
"""
