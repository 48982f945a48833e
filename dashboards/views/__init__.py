"""The dashboard's pages: scripts that Streamlit runs by path from dashboards/app.py, one
per page, each laying out what `dashboards.data` returns for the signed-in viewer.

Deliberately not called `pages/` (see app.py): Streamlit would take that for a legacy
multipage app and could run a page without the sign-in in app.py.
"""
