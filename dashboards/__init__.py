"""The auditor dashboard built on Streamlit (issue #7)."""
