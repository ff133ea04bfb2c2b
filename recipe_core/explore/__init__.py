"""Dashboard services over a scan and the workspace: the sample query behind every data view
(`query`), display summaries (`views`), curation and the cleaned manifest (`curation`), cached
thumbnails (`thumbnails`) and the recipe's checklist (`checklist`). Headless: the app renders
what these return."""
