"""Dashboard (wave 2): the Streamlit + plotly app over the store and the run folders. It imports
the library; nothing in the library imports it."""
