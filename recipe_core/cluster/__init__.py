"""The one place that knows how to reach a Ray cluster: the address rule (`connection`), a
session on it (`ray_session`), and the Jobs API over plain HTTP (`jobs_api`). The stages' Ray paths
(Ray Data scans in `scan.ray_data`, Ray Jobs in `jobs.ray`, Ray Tune in `tune.ray`) connect
through here. Ray is imported only inside the functions that need it."""
