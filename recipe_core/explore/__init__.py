"""Dashboard services over a scan and the workspace: the sample query behind every data view
(`query`), display summaries (`views`), curation and the cleaned manifest (`curation`), cached
thumbnails (`thumbnails`), the recipe's checklist (`checklist`) and ensembles of finished runs
(`ensemble`, evaluated by `ensemble_eval`, saved by `ensemble_records`). Headless: the app
renders what these return."""
