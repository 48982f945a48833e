"""The auditor dashboard (Streamlit): overview, integrity, alerts, search, compliance.

For people who would rather look than read: `auditlake dashboard` serves `app.py`.
Every number comes through the signed-in principal's `lake.api.LakeSession`
(`data.py`), so a page can show only that principal's tenants.
"""
