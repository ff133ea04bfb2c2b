"""Runs: start a training job or a random search, follow its curves live, cancel it, compare.

A job is a background process (the local executor), never the script thread: a rerun or a
closed tab would kill that. The page only reads the run directories, so a run started from a
terminal (`recipe train ... --detach`) shows up here the same way.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app import (
    access,
    check_widgets,
    curves,
    data_state,
    insides_widgets,
    pictures,
    run_state,
    run_widgets,
    tune_widgets,
    widgets,
)
from recipe_core import RecipeError
from recipe_core.runs import RunStatus
from recipe_core.train import PRESETS, make_config
from recipe_core.train.models import MODELS
from recipe_core.train.pipeline import PIPELINE_PRESETS, PipelineTrainConfig
from recipe_core.train.run import describe_stop

# seconds between refreshes of a running job's status and curves: at 1 s a page following a
# live run kept ~0.7 of a core busy in Chromium and 0.4 in the server (benchmarks/live_page.py)
LIVE_S = 2.0
VIEWER_TEXT = "Viewers can watch runs; ask an operator for the runner role to start or cancel jobs."
DEVICES = ("auto", "cpu", "cuda")
PRESET_HELP = {
    "baseline": "Adam 3e-4, constant LR, no regularisation: your first trustworthy number",
    "overfit": "drive the loss to ~0 on 16 images: proves model, loss and optimizer can learn",
    "input_independent": "zeroed inputs: what the label prior alone gives; real data must beat it",
    "train": "regularised (augmentation, dropout, weight decay, early stopping), cosine LR decay",
}

st.title("🏃 Runs")
st.caption(
    "Get dumb baselines, overfit one batch, then regularise: each run is a background job "
    "whose curves update live. Change one thing at a time and compare."
)


def start_form() -> None:
    """Dataset, model, preset and the few numbers that matter; starts a background job."""
    a, b, c = st.columns([3, 1, 3])
    path = widgets.dataset_path_ui(key="run_dataset", where=a)  # raw or cleaned, like Data
    model = b.selectbox(
        "Model", list(MODELS), index=list(MODELS).index("small_cnn"), key="run_model"
    )
    preset = str(c.selectbox("Preset", list(PRESETS), key="run_preset"))
    c.caption(PRESET_HELP.get(preset, ""))
    defaults = make_config("", preset=preset)  # the preset's values prefill the numbers
    d, e, f, g = st.columns(4)
    cap = access.max_steps()  # the operator's per-run limit (submit_run re-checks it)
    steps = d.number_input(
        "Steps",
        min_value=1,
        max_value=cap,
        value=min(defaults.steps, cap or defaults.steps),
        key=f"run_steps_{preset}",
        help=None if cap is None else f"At most {cap:,} on this dashboard.",
    )
    batch = e.number_input(
        "Batch size", min_value=1, value=defaults.batch_size, key=f"run_batch_{preset}"
    )
    seed = f.number_input("Seed", min_value=0, value=0, key="run_seed")
    device = str(
        g.radio("Device", DEVICES, horizontal=True, key="run_device", format_func=_device_label)
    )
    with st.expander("More options"):
        h, i, j = st.columns(3)
        lr = h.number_input(
            "Learning rate",
            min_value=1e-8,
            value=defaults.lr,
            step=1e-4,
            format="%g",
            key=f"run_lr_{preset}",
        )
        target = i.number_input(
            "Stop once the training loss is below (0: never)",
            min_value=0.0,
            value=defaults.target_loss,
            step=0.01,
            format="%g",
            key=f"run_target_{preset}",
        )
        patience = j.number_input(
            "Early stopping: evaluations without a better val loss (0: never)",
            min_value=0,
            value=defaults.early_stopping,
            key=f"run_patience_{preset}",
            help="Stops the run once the validation loss has not improved for this many "
            "evaluations in a row; the best weights stay in checkpoints/best.pt.",
        )
        name = st.text_input("Run name (optional)", key="run_name", placeholder="preset-model")
    no_cuda = device == "cuda" and not run_state.cuda_available()
    if no_cuda:
        st.warning("PyTorch sees no CUDA GPU on this machine: choose auto or cpu.", icon="🚫")
    if st.button("Start run", type="primary", disabled=no_cuda):
        options = dict(
            model=model,
            steps=int(steps),
            batch_size=int(batch),
            seed=int(seed),
            device=device,
            lr=float(lr),
            target_loss=float(target),
            early_stopping=int(patience),
        )
        _start(path, preset, options, name.strip() or None)


def pipeline_form() -> None:
    """The user's pipeline under Recipe's loop: preset, steps, seed, device; its code runs
    only in the job's own process."""
    spec, was_typed = check_widgets.pipeline_ui(access.pipelines(), access.may_type_pipelines(),
                                                key="run")  # fmt: skip
    a, b, c, d = st.columns(4)
    preset = str(a.selectbox("Preset", list(PIPELINE_PRESETS), key="run_pipeline_preset"))
    default_steps, what = PIPELINE_PRESETS[preset]
    a.caption(f"{what}; {default_steps:,} steps")
    cap = access.max_steps()
    steps = int(b.number_input("Steps (0: the preset's)", min_value=0, max_value=cap, value=0,
                               key="run_pipeline_steps"))  # fmt: skip
    seed = int(c.number_input("Seed", min_value=0, value=0, key="run_pipeline_seed"))
    device = str(d.radio("Device", DEVICES, horizontal=True, key="run_pipeline_device",
                         format_func=_device_label))  # fmt: skip
    if st.button("Start run", type="primary", key="run_pipeline_start"):
        try:
            if not spec:
                raise RecipeError("Choose a pipeline (or type FILE.py:NAME) first.")
            checked = access.typed_pipeline(spec) if was_typed else spec
            config = PipelineTrainConfig(checked, preset=preset, steps=steps, seed=seed,
                                         device=device)  # fmt: skip
            handle = run_state.submit_run(config)
        except RecipeError as error:
            st.error(widgets.md(error), icon="🚫")
            return
        run_state.select_run(handle.run_id)
        st.toast(f"Started {widgets.md(handle.run_id)}", icon="🏃")


def _device_label(device: str) -> str:
    if device == "cuda" and not run_state.cuda_available():
        return "cuda (no GPU here)"
    return device


def _start(path: str, preset: str, options: dict[str, object], name: str | None) -> None:
    try:
        data_state.dataset_source(path)  # a missing or forbidden folder fails here, not in the job
        config = make_config(str(access.path_policy().resolve(path)), preset=preset, **options)
        handle = run_state.submit_run(config, name=name)
    except RecipeError as error:
        st.error(widgets.md(error), icon="🚫")
        return
    run_state.select_run(handle.run_id)
    st.toast(f"Started {widgets.md(name or handle.run_id)}", icon="🏃")


def runs_panel(statuses: list[RunStatus]) -> None:
    """Every run with its state (cancel the unfinished ones), then the chosen run's curves."""
    running = [s for s in statuses if not s.finished]
    run_widgets.runs_table(statuses)
    for s in running:
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.markdown(
            f"{run_widgets.STATE_ICONS[s.state]} **{widgets.md(s.name)}** "
            f"({s.run_id}) is {s.state}."
        )
        if access.can("cancel_run") and right.button(
            "Cancel", key=f"cancel_{s.run_id}", width="stretch"
        ):
            _cancel(s)
    status = run_widgets.run_picker_ui(statuses, key="runs_pick")
    run_detail(status)


@st.fragment(run_every=LIVE_S)
def live_runs_panel() -> None:
    """The panel, re-read every LIVE_S while some run is unfinished."""
    statuses = run_state.runs()
    if all(s.finished for s in statuses):
        st.rerun(scope="app")  # the last job ended: redraw once, without the timer
    runs_panel(statuses)


@st.fragment(run_every=LIVE_S)
def live_searches_panel() -> None:
    """The searches, re-read every LIVE_S while one has unfinished trials."""
    found = run_state.searches()
    if all(f.finished for f in found):
        st.rerun(scope="app")
    tune_widgets.searches_panel(found)


@st.fragment
def still_runs_panel() -> None:
    runs_panel(run_state.runs())


def _cancel(status: RunStatus) -> None:
    try:
        with st.spinner(f"Stopping {widgets.md(status.name)}…"):
            run_state.cancel_run(status.run_id)
    except RecipeError as error:
        st.error(widgets.md(error), icon="🚫")
        return
    st.rerun(scope="app")


def run_detail(status: RunStatus) -> None:
    """Status (and why it failed), progress, loss and accuracy curves, config and log."""
    metrics = run_state.run_metrics(status.run_id)
    config = run_state.run_config(status.run_id)
    train = metrics[metrics["split"] == "train"]
    last = int(train["step"].iloc[-1]) + 1 if len(train) else None
    run_widgets.status_banner(status, step=last)
    run_widgets.skipped_rows_warning(run_state.run_skipped_rows(status.run_id))
    if train.empty:
        st.info("No metrics yet: the first ones appear after the first logging interval.")
    else:
        st.caption(_progress_text(status, train, config))
        view = run_widgets.chart_view_ui(curves.chart_metrics(metrics), key="runs_chart",
                                         wall_time=curves.has_wall_time(metrics))  # fmt: skip
        run_widgets.metric_curves(metrics, run_id=status.run_id, view=view)
    stop = run_state.run_stop(status.run_id)
    stopped = describe_stop(stop)
    if stopped and status.state == "succeeded":  # a stop it was asked for, not a failure
        st.success(stopped, icon="🎯" if stop.get("reason") == "target_loss" else "⏸️")
    leave_it_training(status, config)
    st.page_link(
        "views/dynamics.py", label="See how its predictions on the probe images evolved", icon="🎞️"
    )
    seen_in_run(status)
    insides_section(status)
    with st.expander("Config, run folder and log"):
        st.code(str(run_state.run_dir(status.run_id)), language=None)
        st.json(config)
        log = (
            run_state.run_log(status.run_id)[-5000:] or "(no log: the run was recorded by a script)"
        )
        st.code(log, language=None, wrap_lines=True)


def leave_it_training(status: RunStatus, config: dict[str, object]) -> None:
    """ "Leave it training": a finished built-in run continues from its last checkpoint for
    more steps, in the same run (its curves go on), as a background job."""
    resumes = run_state.run_resumes(status.run_id)
    if resumes:
        st.caption("Left training " + "; ".join(
            f"from step {r.get('from_step')} for {r.get('more')} more ({r.get('optimizer')} "
            "optimizer state)" for r in resumes) + ".")  # fmt: skip
    resumable = status.state in ("succeeded", "cancelled") and status.kind == "job"
    if not resumable or "pipeline" in config or not access.can("start_run"):
        return
    if not (run_state.run_dir(status.run_id) / "checkpoints" / "last.pt").is_file():
        return
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    done = config.get("steps")
    more = left.number_input(
        "Leave it training: more steps", min_value=1, max_value=access.max_steps(),
        value=done if isinstance(done, int) and done > 0 else 1000,
        key=f"resume_steps_{status.run_id}",
        help="Continues this run from its last checkpoint (weights, optimizer state and LR "
        "schedule), so its curves go on where they stopped.",
    )  # fmt: skip
    if right.button("Leave it training", key=f"resume_{status.run_id}", width="stretch"):
        try:
            run_state.resume_run(status.run_id, int(more))
        except RecipeError as error:
            st.error(widgets.md(error), icon="🚫")
            return
        st.toast(f"{widgets.md(status.name)} trains {int(more):,} more steps", icon="🏃")
        st.rerun(scope="app")


def seen_in_run(status: RunStatus) -> None:
    """What the net saw in this run: the batches it captured at model(x) (a script's
    run.watch, a built-in or a pipeline run), decoded, with the same warnings as live."""
    names = run_state.captured_batches(status.run_id)
    with st.expander(f"What the net saw in this run ({len(names)} captured batches)",
                     expanded=bool(names) and status.kind == "script", on_change="rerun",
                     key=f"seen_open_{status.run_id}") as section:  # fmt: skip
        if not section.open:  # lazy: a closed section sends nothing on each live refresh
            return
        if not names:
            st.caption("No batch captured yet: the first training inputs appear here once "
                       "model(x) received them.")  # fmt: skip
            return
        name = str(st.selectbox("Captured batch", names, key=f"seen_{status.run_id}",
                                format_func=lambda n: n.rsplit("/", 1)[-1]))  # fmt: skip
        try:
            view, picture = run_state.captured_batch(status.run_id, name)
        except RecipeError as error:
            st.error(widgets.md(error), icon="🚫")
            return
        st.caption(f"{view.layout} · shape {tuple(view.shape)} · {view.dtype}, exactly as "
                   "model(x) received it")  # fmt: skip
        check_widgets.batch_warnings(view.warnings)
        pictures.image(picture, width="content")


def insides_section(status: RunStatus) -> None:
    """Inside the net over training: the first layer's weights (step slider) and, per layer,
    activation spread, dead units, gradient norm and update ratio, with the engine's warnings.
    ("Visualize the first-layer weights and ensure you get nice edges.")"""
    # a live run's insides are read only once the section is open: they grow every flush
    ended = run_state.run_insides(status.run_id) if status.finished else None
    with st.expander("Insides: first-layer weights and per-layer statistics",
                     expanded=bool(ended and ended.warnings), on_change="rerun",
                     key=f"insides_open_{status.run_id}") as section:  # fmt: skip
        if not section.open:  # lazy: its charts and grid would be redrawn every refresh
            return
        insides = ended or run_state.run_insides(status.run_id)
        steps = insides.first_layer_steps
        st.caption(f"{insides.frame['step'].nunique()} recorded steps.")
        if insides.frame.empty and not steps:
            st.caption("Nothing recorded yet: a built-in run records its insides every "
                       "insides_every steps (0 turns them off).")  # fmt: skip
            return
        insides_widgets.insides_warnings(insides.warnings)
        if steps:
            key = f"insides_step_{status.run_id}"
            step = insides_widgets.first_layer_step_ui(steps, key=key)
            change = st.toggle(f"Show the change since step {steps[0]}", key=f"{key}_change")
            since = steps[0] if change and step != steps[0] else None
            what = "change of each unit" if since is not None else "weights of each unit"
            st.caption(f"First layer at step {step}: {what}, min-max scaled per unit "
                       "(its pattern shows, not its size); up to 64 units.")  # fmt: skip
            picture = run_state.first_layer_picture(status.run_id, step, since=since)
            pictures.image(picture, width="content", caption=f"first layer, step {step}")
        insides_widgets.layer_lines(insides.frame, key=f"insides_{status.run_id}")


def _progress_text(status: RunStatus, train: pd.DataFrame, config: dict[str, object]) -> str:
    done, limit = int(train["step"].iloc[-1]) + 1, config.get("steps")
    of = f" of {limit}" if isinstance(limit, int) else ""  # a script's config may not say
    text = (
        f"step {done}{of} · {len(train)} training steps logged · "
        f"last training loss {_number(float(train['loss'].iloc[-1]))}"
    )
    if status.state == "unknown":  # a corrupt status.json: live or not, nobody can tell
        return text
    if not status.finished:
        return f"Live: {text} · refreshed every {LIVE_S:g} s"
    return text


def _number(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def compare_section(statuses: list[RunStatus]) -> None:
    """Overlay the curves of chosen runs; diff their configs against a parent run."""
    labels = {s.run_id: f"{s.name} #{s.run_id[-6:]}" for s in statuses}  # names repeat
    chosen = st.multiselect(
        "Runs to compare",
        list(labels),
        default=list(labels)[:2],
        key=run_state.COMPARE_KEY,
        format_func=labels.__getitem__,
    )
    if not chosen:
        return
    runs = {labels[r]: run_state.run_metrics(r) for r in chosen}
    metric, split, smoothing, log, x = run_widgets.overlay_controls_ui(runs, key="compare")
    run_widgets.overlay_curves(runs, metric=metric, split=split, log=log, smoothing=smoothing,
                               x=x)  # fmt: skip
    parent = st.selectbox(
        "Parent run (what the others changed)",
        chosen,
        index=len(chosen) - 1,
        key="compare_parent",
        format_func=labels.__getitem__,
    )
    configs = {labels[r]: run_state.run_config(r) for r in chosen}
    run_widgets.config_diff(labels[str(parent)], configs, search=run_state.common_search(chosen))


statuses = run_state.runs()
if access.can("start_run"):
    with st.expander("Start a run", expanded=not statuses, icon="▶️"):
        source = check_widgets.source_ui(access.pipelines(), access.may_type_pipelines(),
                                         "Train", key="run_kind")  # fmt: skip
        if source == check_widgets.PIPELINE:
            pipeline_form()
        else:
            start_form()
    with st.expander("Search hyper-parameters (random search)", icon="🔎"):
        st.caption(
            "Train several configs drawn from ranges you give, as background runs, and see "
            "which is best. Tune after the baselines and the overfit check pass: a search "
            "cannot fix a bug."
        )
        tune_widgets.search_form()
else:
    st.info(VIEWER_TEXT, icon="👀")
statuses = run_state.runs()  # with the run just started
if not statuses:
    how = (
        "Start one above, or from a terminal: `recipe train DATASET --preset overfit`."
        if access.can("start_run")
        else "Runs a runner starts appear here."
    )
    st.info(f"No runs in this workspace yet. {how}", icon="🏁")
    st.stop()
st.subheader("Runs")
if any(not s.finished for s in statuses):
    live_runs_panel()
else:
    still_runs_panel()
found = run_state.searches()
if found:
    st.subheader("Searches")
    if any(not f.finished for f in found):
        live_searches_panel()
    else:
        tune_widgets.searches_panel(found)
st.subheader("Compare runs")
if len(statuses) < 2:
    st.caption("Start a second run to compare: change one thing (model, preset, a number).")
else:
    st.caption("Overlay the curves of several runs, and see what each changed against a parent.")
    compare_section(statuses)
