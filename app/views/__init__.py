"""One module per page. Each is a Streamlit script run by st.navigation."""
