"""Recipe's Streamlit dashboard. Renders `recipe_core` results; holds no logic of its own."""
