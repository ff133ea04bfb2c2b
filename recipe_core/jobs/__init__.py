"""Every detached process Recipe starts, and where it runs.

One job model for scans, checks and training runs: the same state vocabulary
(`recipe_core.jobs.state.JobState`), one way to start a worker process in its own session, follow
it through a heartbeat, cancel it (SIGTERM, then SIGKILL) and reap it (`process`). Scans and checks
keep their record in a job folder (`scan_job`, `check_job`); a training run's record is its run
directory (`train_job` is the process entry, `executors` picks local subprocesses or Ray Jobs,
`mirror` runs a job against shared storage).
"""
