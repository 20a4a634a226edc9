"""The dashboard's helpers: the pages, run picker, forms, runs table, plotly charts and model cache (the only Streamlit code outside pages/)."""
