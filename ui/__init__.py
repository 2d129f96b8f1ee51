"""Streamlit helpers shared by the pages: report views, job progress, the
Netron frame, uploads and the one error handler. ``core`` never imports this."""
