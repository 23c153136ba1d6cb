"""The Gradio page: components, layout and event wiring, nothing else.

Every event calls a plain function (`studio/ui/actions.py`, `studio/ui/steps.py`) and only moves
values in and out. A `StudioError` from a step becomes a `gr.Error` message; because a failed
event returns no outputs, the page keeps every caption, prompt, setting and run it had.
"""

import atexit
import functools
import inspect
import logging
import shutil
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..caption.structured import ASPECTS
from ..config import StudioConfig
from ..errors import InputError, StudioError
from . import actions, steps
from .backends import Backends
from .limits import ModelQueue, QueueFull, SessionRuns, history_mode
from .zerogpu import CAPTION_DURATION, gpu

log = logging.getLogger("studio.ui")

GPU_QUEUE = "gpu"  # every event that runs a model shares one queue slot (one GPU)
COMPOSE_QUEUE = "compose"  # model-free steps never wait behind the model
COMPOSE_CONCURRENCY = 16
TITLE = "CHAI Cinematic Prompt Studio"
VIDEO_TYPES = list(actions.VIDEO_EXTENSIONS)

# Keeps the two result videos in step: play, pause and seek on one are mirrored on the other.
SYNC_JS = """
<script>
(() => {
  const pair = () => ['video-finetuned', 'video-zeroshot'].map(id => document.querySelector('#' + id + ' video'));
  const bind = () => {
    const [a, b] = pair();
    if (!a || !b || a.dataset.synced === a.currentSrc + '|' + b.currentSrc) return;
    a.dataset.synced = a.currentSrc + '|' + b.currentSrc;
    let busy = false;
    const mirror = (src, dst) => {
      src.onplay = () => { if (busy) return; busy = true; dst.currentTime = src.currentTime; dst.play().catch(() => {}); busy = false; };
      src.onpause = () => { if (busy) return; busy = true; dst.pause(); busy = false; };
      src.onseeked = () => { if (busy) return; busy = true; if (Math.abs(dst.currentTime - src.currentTime) > 0.05) dst.currentTime = src.currentTime; busy = false; };
    };
    mirror(a, b); mirror(b, a);
  };
  setInterval(bind, 800);
})();
</script>
"""

CSS = """
#tiny-banner { background: #fff4d6; border: 1px solid #e0b84a; border-radius: 6px; padding: 4px 12px; }
#gpu-banner { background: #fde2e1; border: 1px solid #d9534f; border-radius: 6px; padding: 4px 12px; }
.aspect-panel { border-left: 4px solid var(--color-accent) !important; }
.reward-badge { font-weight: 600; }
"""


def _guard(fn: Callable) -> Callable:
    """Turn a StudioError into a page message; other errors are logged and summarised.

    The wrapper also shows Gradio a flat signature: `*boxes` (the five aspect texts) becomes the
    named parameters subject..camera, and parameters after it (gr.Request, gr.Progress) become
    positional, which is where Gradio looks for them.
    """
    import inspect

    original = inspect.signature(fn)
    exposed = _named_boxes(original)

    def to_call(args, kwargs):
        bound = exposed.bind(*args, **kwargs)
        bound.apply_defaults()
        positional, keywords = [], {}
        for param in original.parameters.values():
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                positional += [bound.arguments[a.lower()] for a in ASPECTS]
            elif param.kind is inspect.Parameter.KEYWORD_ONLY:
                keywords[param.name] = bound.arguments[param.name]
            else:
                positional.append(bound.arguments[param.name])
        return positional, keywords

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            positional, keywords = to_call(args, kwargs)
            return fn(*positional, **keywords)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - the page must survive any failure of one step
            _report(exc)

    @functools.wraps(fn)
    def call_gen(*args, **kwargs):
        try:
            positional, keywords = to_call(args, kwargs)
            yield from fn(*positional, **keywords)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001
            _report(exc)

    wrapper = call_gen if inspect.isgeneratorfunction(fn) else call
    wrapper.__signature__ = exposed
    return wrapper


def _named_boxes(signature):
    """`*boxes` -> subject, scene, motion, spatial, camera; keyword-only parameters after it -> positional."""
    import inspect

    params = []
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_POSITIONAL and param.name == "boxes":
            params += [inspect.Parameter(a.lower(), inspect.Parameter.POSITIONAL_OR_KEYWORD) for a in ASPECTS]
        elif param.kind is inspect.Parameter.KEYWORD_ONLY:
            params.append(param.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD))
        else:
            params.append(param)
    return signature.replace(parameters=params)


def _report(exc: BaseException) -> None:
    if isinstance(exc, StudioError):
        log.warning("step refused: %s", exc)  # the log keeps the paths the page leaves out
    else:
        log.error("step failed:\n%s", "".join(traceback.format_exception(exc)))
    raise gr.Error(actions.error_message(exc), duration=None, print_exception=False) from None


def _model_step(model_queue: ModelQueue, lock: threading.Lock) -> Callable[[Callable], Callable]:
    """Wrap a (guarded) step that runs a model: it tells `model_queue` it started, and holds `lock`
    for the whole run (all of a streaming step), so the composer's LLM merge, which runs outside
    the model queue, takes turns with it. A `request` parameter is added for the session when the
    step has none."""
    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)
        own_request = "request" in signature.parameters
        exposed = signature if own_request else signature.replace(parameters=[
            *signature.parameters.values(),
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                              annotation=gr.Request)])

        def arguments(args, kwargs):
            bound = exposed.bind(*args, **kwargs)
            bound.apply_defaults()
            model_queue.started(_session(bound.arguments.get("request")))
            if not own_request:
                bound.arguments.pop("request")
            return bound.args, bound.kwargs

        if inspect.isgeneratorfunction(fn):
            def stream(*args, **kwargs):
                args, kwargs = arguments(args, kwargs)
                with lock:
                    yield from fn(*args, **kwargs)

            wrapper = stream
        else:
            def call(*args, **kwargs):
                args, kwargs = arguments(args, kwargs)
                with lock:
                    return fn(*args, **kwargs)

            wrapper = call
        functools.update_wrapper(wrapper, fn)
        del wrapper.__wrapped__  # Gradio must see `exposed`, not the wrapped function's signature
        wrapper.__signature__ = exposed
        wrapper.__annotations__ = {**getattr(fn, "__annotations__", {}), "request": gr.Request}  # how Gradio finds it
        return wrapper

    return decorate


def _session(request: Any) -> str:
    return getattr(request, "session_hash", None) or "api"


def _owner(request: Any) -> str:
    """Whose runs these are: the signed-in user (with --auth), else the browser session."""
    username = getattr(request, "username", None)
    return f"user:{username}" if username else _session(request)


def _model_queue_view(page: gr.Blocks, session: str) -> tuple[int, set[str]]:
    """(jobs waiting for the model, ids of this session's model jobs queued or running), read from
    Gradio's queue; (0, empty) if its internals ever change shape."""
    try:
        queue = page._queue
        waiting = list(getattr(queue.event_queue_per_concurrency_id.get(GPU_QUEUE), "queue", []))
        running = [event for jobs in queue.active_jobs if jobs for event in jobs if event.concurrency_id == GPU_QUEUE]
        return len(waiting), {event._id for event in waiting + running if event.session_hash == session}
    except AttributeError:
        return 0, set()


def _admission(page: gr.Blocks, model_queue: ModelQueue) -> Callable:
    """A Gradio validator for a model event: runs when a job asks to join the queue, and refuses it
    (with the queue's message) when the queue or the visitor's share of it is full. The request
    comes first so the event's inputs, however many, follow it."""
    def admit(request: gr.Request, *values):
        session = _session(request)
        try:
            model_queue.admit(session, *_model_queue_view(page, session))
        except QueueFull as exc:
            log.warning("refused a model job of session %s: %s", session, exc)
            raise gr.Error(str(exc), print_exception=False) from None
        return [gr.validate(True, "")] * len(values)

    return admit


def build_page(config: StudioConfig, backends: Backends | None = None, public: bool = False) -> gr.Blocks:
    """Build the whole page. Nothing here loads a model; models load on first use. `public` (the page
    is reachable by others) makes the run history per visitor session unless `history` says otherwise."""
    backends = backends or Backends(config)
    # Exports and still frames are written here; Gradio copies what it serves into its own cache
    # (cleaned by delete_cache), so this folder only needs to live as long as the process.
    work_dir = Path(tempfile.mkdtemp(prefix="chai-studio-ui-"))
    atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    cancel_events: dict[str, threading.Event] = {}
    finetune_picks: dict[str, str] = {}  # session -> the finetuned weights it picked from the models folder
    max_chars = config.max_aspect_chars
    model_lock = threading.Lock()
    model_queue = ModelQueue(config.queue_size, config.session_jobs)
    on_model = _model_step(model_queue, model_lock)
    per_session = history_mode(config, public) == "session"
    session_runs = SessionRuns()

    with gr.Blocks(title=TITLE, delete_cache=(3600, 24 * 3600)) as page:
        gr.Markdown(f"# {TITLE}\nCaption a reference shot aspect by aspect, refine it, compose one prompt and "
                    "compare the CHAI-finetuned Wan2.2 with the zero-shot Wan2.2 on the same seed.")
        if config.tiny:
            gr.Markdown("**Tiny mode:** every model here is a random-weight wiring check built offline. Captions, "
                        "scores, critiques and videos are noise; they show that each step runs end to end, "
                        "not what the real models produce.", elem_id="tiny-banner")
        # Filled on page load when --device auto cannot use a GPU the machine has (see gpu_check).
        gpu_banner = gr.Markdown("", visible=False, elem_id="gpu-banner")
        caption_state = gr.State(actions.empty_state())
        clip_duration = gr.State(0.0)
        run_ids = gr.State([])

        # ---------------------------------------------------------------- 1. Reference
        gr.Markdown("## 1 · Reference")
        with gr.Row():
            with gr.Column(scale=1):
                reference = gr.File(label=f"Reference clip ({actions.VIDEO_TYPES_TEXT}; at most "
                                          f"{config.max_clip_seconds:g} s)", file_types=VIDEO_TYPES,
                                    type="filepath", height=120, elem_id="reference-upload")
                shot = gr.Dropdown(label="Shot", choices=[], value=None, interactive=True,
                                   info="Detected shots; picking one sets the trim range.")
                with gr.Row():
                    start = gr.Number(label="Start (s)", value=0.0, minimum=0, precision=2)
                    end = gr.Number(label="End (s)", value=0.0, minimum=0, precision=2)
                two_stage = gr.Checkbox(label="Two-stage captioning (CHAI order: Subject, Scene, Camera first; then Motion and Spatial given them)", value=False)
                caption_button = gr.Button("Caption", variant="primary", elem_id="caption-button")
                reference_info = gr.Markdown("", label="reference summary", elem_id="reference-info")
            with gr.Column(scale=1):
                preview = gr.Video(label="Preview", interactive=False, height=300, elem_id="reference-preview")
                start_frame = gr.Image(label="Frame at start", interactive=False, type="filepath", height=180)

        # ---------------------------------------------------------------- 2. Caption
        gr.Markdown("## 2 · Caption")
        with gr.Row():
            preset = gr.Dropdown(label="Shot library", choices=steps.safe_preset_names(backends), value=None,
                                 scale=2, elem_id="preset-choice")
            load_preset = gr.Button("Load preset", scale=1)
            import_file = gr.File(label="Import caption JSON (studio or CHAI record)", file_types=[".json"],
                                  type="filepath", scale=2, height=110, elem_id="import-caption")
            export_button = gr.Button("Export JSON", scale=1)
            export_file = gr.File(label="Exported caption", interactive=False, scale=2, height=110)
        status = gr.Markdown("", label="status", elem_id="status")

        texts, badges, histories, critiques, panels = [], [], [], [], []
        for aspect in ASPECTS:
            key = aspect.lower()
            with gr.Group(elem_classes=["aspect-panel"]):
                with gr.Row():
                    with gr.Column(scale=3):
                        text = gr.Textbox(label=aspect, info=actions.ASPECT_HINTS[aspect], lines=3, max_lines=12,
                                          max_length=max_chars, elem_id=f"text-{key}")
                    with gr.Column(scale=2):
                        with gr.Row():
                            badge = gr.Markdown("Reward: not scored", label=f"{key} reward", elem_classes=["reward-badge"],
                                                elem_id=f"reward-{key}")
                            score = gr.Button("Score", size="sm", elem_id=f"score-{key}")
                        picker = gr.Dropdown(label=f"{aspect} primitive", choices=steps.safe_primitive_choices(
                            backends, aspect), value=None, interactive=True, elem_id=f"picker-{key}")
                        definition = gr.Markdown("", label=f"{key} primitive definition")
                        apply = gr.Button("Insert / replace in text", size="sm", elem_id=f"apply-{key}")
                with gr.Row():
                    critique = gr.Textbox(label=f"{aspect} critique", lines=2, scale=3, elem_id=f"critique-{key}",
                                          placeholder="What is wrong or missing? Write it, or ask the model.")
                    with gr.Column(scale=1, min_width=160):
                        suggest = gr.Button("Suggest critique", size="sm", elem_id=f"suggest-{key}")
                        revise = gr.Button("Revise", size="sm", variant="secondary", elem_id=f"revise-{key}")
                        undo = gr.Button("Undo", size="sm", elem_id=f"undo-{key}")
                with gr.Accordion(f"{aspect} revision history", open=False):
                    history = gr.Markdown("_No revisions yet._", label=f"{key} history", elem_id=f"history-{key}")
                with gr.Accordion(f"{aspect} glossary", open=False):
                    gr.Markdown(steps.safe_glossary(backends, aspect))
            texts.append(text)
            badges.append(badge)
            histories.append(history)
            critiques.append(critique)
            panels.append(dict(aspect=aspect, score=score, picker=picker, definition=definition, apply=apply,
                               suggest=suggest, revise=revise, undo=undo, critique=critique))

        # Hidden inputs for the aspect-generic API endpoints (/score, /critique, /revise).
        with gr.Column(visible=False):
            api_aspect = gr.Textbox(label="aspect")
            api_text = gr.Textbox(label="text")
            api_critique_in = gr.Textbox(label="critique")
            api_reward = gr.Number(label="reward")
            api_critique_out = gr.Textbox(label="critique")
            api_revised = gr.Textbox(label="revised text")
            api_score_button = gr.Button("score")
            api_critique_button = gr.Button("critique")
            api_revise_button = gr.Button("revise")

        # ---------------------------------------------------------------- 3. Prompt
        gr.Markdown("## 3 · Prompt")
        with gr.Row():
            compose_mode = gr.Radio(list(actions.COMPOSE_MODES), value="Extractive", label="Composer",
                                    info="Extractive keeps your own wording; LLM merge asks the captioner.")
            max_words = gr.Slider(20, 320, value=config.prompt_words, step=10, label="Word budget")
            compose_button = gr.Button("Compose prompt", variant="primary", elem_id="compose-button")
        prompt = gr.Textbox(label="Prompt (editable)", lines=6, max_lines=20, elem_id="prompt")
        meter = gr.Markdown(actions.prompt_meter(""), label="prompt meter", elem_id="prompt-meter")
        compose_report = gr.Markdown("", label="compose report", elem_id="compose-report")

        # ---------------------------------------------------------------- 4. Generate
        gr.Markdown("## 4 · Generate")
        if not config.finetuned and not config.tiny:
            gr.Markdown("No CHAI-finetuned weights are set, so *Generate* compares the CHAI prompt with a short plain "
                        "prompt on the zero-shot model (or runs the zero-shot model alone without one). For the "
                        "finetuned comparison start with `--finetuned PATH` (or `CHAI_STUDIO_FINETUNED=PATH`): a "
                        "diffusers folder, a transformer `.safetensors` or a LoRA.", elem_id="finetuned-missing")
        defaults = steps.generation_defaults(config, "ti2v-5b")
        with gr.Row():
            with gr.Column():
                model_preset = gr.Radio(steps.generation_presets(), value="ti2v-5b", label="Model preset")
                with gr.Row():
                    seconds = gr.Slider(0.1, defaults["max_seconds"], value=defaults["seconds"], step=0.1,
                                        label="Duration (s)")
                    resolution = gr.Dropdown(defaults["resolutions"], value=defaults["resolution"],
                                             label="Resolution", allow_custom_value=True)
                with gr.Row():
                    num_steps = gr.Slider(1, 100, value=defaults["steps"], step=1, label="Steps")
                    guidance = gr.Slider(0.0, 12.0, value=defaults["guidance"], step=0.1, label="Guidance")
                    shift = gr.Slider(0.5, 15.0, value=defaults["shift"], step=0.5, label="Shift")
            with gr.Column():
                with gr.Row():
                    seed = gr.Number(label="Seed", value=42, precision=0)
                    randomize = gr.Checkbox(label="Randomize seed", value=False)
                    used_seed = gr.Number(label="Seed used", interactive=False, precision=0, elem_id="used-seed")
                negative = gr.Textbox(label="Negative prompt", value="", lines=2,
                                      placeholder="Empty: the studio's default list of video artefacts to avoid.")
                first_frame = gr.Checkbox(label="Start from the reference's first frame (image to video, TI2V-5B)",
                                          value=False)
                comparison_mode = gr.Radio(
                    [("Automatic", "auto"), ("Finetuned vs zero-shot", "finetuned"),
                     ("CHAI prompt vs short prompt", "prompt")], value="auto", label="Compare",
                    info="Automatic: finetuned vs zero-shot when finetuned weights are set, else CHAI prompt vs "
                         "short prompt (or the zero-shot model alone).", elem_id="comparison-mode")
                short_prompt = gr.Textbox(label="Short plain prompt (prompt mode)", lines=1, elem_id="short-prompt",
                                          placeholder="e.g. a man walks down a street at night")
                with gr.Row():
                    finetune_menu = gr.Dropdown(steps.finetune_choices(config), value="", elem_id="finetune-menu",
                                                label=f"Finetuned weights (LoRAs from `studio train` in "
                                                      f"{Path(config.models_dir).name}/)")
                    refresh_finetunes = gr.Button("Refresh list", size="sm", elem_id="refresh-finetunes")
                with gr.Row():
                    generate_button = gr.Button("Generate side by side", variant="primary",
                                                elem_id="generate-button")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
        with gr.Row(equal_height=True):
            with gr.Column(min_width=240):
                finetuned_video = gr.Video(label="CHAI-finetuned Wan2.2", interactive=False, height=360,
                                           elem_id="video-finetuned", loop=True)
                finetuned_progress = gr.Markdown("", label="finetuned progress", elem_id="progress-finetuned")
            with gr.Column(min_width=240):
                baseline_video = gr.Video(label="Zero-shot Wan2.2", interactive=False, height=360,
                                          elem_id="video-zeroshot", loop=True)
                baseline_progress = gr.Markdown("", label="zero-shot progress", elem_id="progress-zeroshot")
        downloads = gr.File(label="Downloads: side_by_side.mp4 and run.json", file_count="multiple",
                            interactive=False, elem_id="downloads")

        # ---------------------------------------------------------------- 5. History
        gr.Markdown("## 5 · History")
        with gr.Row():
            refresh_history = gr.Button("Refresh", size="sm", scale=0)
            gr.Markdown("Click a run to reload its caption, prompt and settings.")
        gallery = gr.Gallery(label="Past runs", columns=4, height=260, allow_preview=False, fit_columns=False,
                             object_fit="contain", elem_id="history")

        # ================================================================ events
        # Event options of a step that runs a model: one queue slot, admission checked on joining.
        model_job = dict(concurrency_id=GPU_QUEUE, concurrency_limit=1, validator=_admission(page, model_queue))

        panel_outputs = [caption_state, *texts, *badges, *histories]

        def panel_values(caption) -> list[Any]:
            return [caption.to_dict(), *actions.texts_of(caption),
                    *[actions.reward_badge(caption, a) for a in ASPECTS],
                    *[actions.history_markdown(caption, a) for a in ASPECTS]]

        # Reference ---------------------------------------------------------------------------
        @_guard
        def on_upload(reference):
            path = reference
            if not path:
                return None, gr.update(choices=[], value=None), 0.0, 0.0, None, "", 0.0
            info = steps.inspect_reference(backends, path, config)
            return (info["preview"], gr.update(choices=info["shots"], value=info["shot"]), info["start"],
                    info["end"], info["frame"], info["summary"], info["duration"])

        reference.upload(on_upload, reference,
                         [preview, shot, start, end, start_frame, reference_info, clip_duration], api_name="upload")

        @_guard
        def on_shot(value, path):
            rng = actions.parse_shot(value)
            if rng is None:
                return gr.update(), gr.update(), gr.update()
            frame = steps.safe_frame(backends, path, rng[0], work_dir)
            return rng[0], rng[1], frame

        shot.input(on_shot, [shot, reference], [start, end, start_frame], api_name="pick_shot")

        @on_model
        @_guard
        @gpu(duration=CAPTION_DURATION)
        def on_caption(reference, start, end, two_stage, duration, state, *boxes, progress=gr.Progress()):
            base = actions.apply_edits(state, boxes, max_chars)
            streamed = False
            try:
                for event in steps.caption_reference(backends, config, reference, start, end, duration,
                                                     bool(two_stage), base):
                    if event.done:
                        yield [*panel_values(event.caption), event.message]
                    else:
                        streamed = True
                        progress(event.fraction, desc=event.message)
                        yield [gr.update(), *event.texts, *[gr.update()] * 10, event.message]
            except Exception as exc:
                if streamed:  # put the texts from before the failed run back in the boxes
                    yield [*panel_values(base), f"Captioning failed: {actions.error_message(exc)}"]
                raise

        caption_button.click(on_caption, [reference, start, end, two_stage, clip_duration, caption_state, *texts],
                             [*panel_outputs, status], api_name="caption", **model_job)

        # Caption: presets, import, export ------------------------------------------------------
        @_guard
        def on_preset(name, state, *boxes):
            caption = steps.load_preset(backends, name, state, boxes, max_chars)
            return [*panel_values(caption), f"Loaded preset **{name}**; the previous caption is one Undo away."]

        load_preset.click(on_preset, [preset, caption_state, *texts], [*panel_outputs, status], api_name="load_preset")

        @_guard
        def on_import(path, state, *boxes):
            if not path:
                return [gr.update()] * (len(panel_outputs) + 1)
            caption = steps.import_into(path, state, boxes, max_chars)
            return [*panel_values(caption), f"Imported **{Path(path).name}**; each aspect's previous text is "
                                            "one Undo away."]

        import_file.upload(on_import, [import_file, caption_state, *texts], [*panel_outputs, status],
                           api_name="import_caption")

        @_guard
        def on_export(state, *boxes):
            path = actions.export_caption(state, boxes, work_dir, max_chars)
            return str(path), f"Exported **{path.name}**."

        export_button.click(on_export, [caption_state, *texts], [export_file, status], api_name="export_caption")

        # Caption: per-aspect tools ------------------------------------------------------------
        for n, panel in enumerate(panels):
            aspect, key = panel["aspect"], panel["aspect"].lower()

            def make(aspect=aspect):
                @_guard
                def on_apply(qid, state, *boxes):
                    caption = steps.apply_primitive(backends, state, boxes, aspect, qid, max_chars)
                    return [*panel_values(caption), f"{aspect}: applied {qid}."]

                def on_definition(qid):
                    return steps.safe_definition(backends, aspect, qid)

                @_guard
                def on_undo(state, *boxes):
                    caption, message = actions.undo(state, boxes, aspect, max_chars)
                    return [*panel_values(caption), message]

                @on_model
                @_guard
                @gpu(duration=CAPTION_DURATION)
                def on_score(reference, start, end, state, *boxes):
                    caption = steps.score_aspect(backends, config, reference, start, end, state, boxes, aspect)
                    return [*panel_values(caption), f"{aspect}: {actions.reward_badge(caption, aspect)}"]

                @on_model
                @_guard
                @gpu(duration=CAPTION_DURATION)
                def on_suggest(reference, start, end, state, *boxes):
                    suggestion = steps.suggest_critique(backends, config, reference, start, end, state, boxes, aspect)
                    return suggestion, f"{aspect}: the model suggested a critique; edit it, then Revise."

                @on_model
                @_guard
                @gpu(duration=CAPTION_DURATION)
                def on_revise(reference, start, end, critique, state, *boxes):
                    caption = steps.revise_aspect(backends, config, reference, start, end, state, boxes, aspect,
                                                  critique)
                    return [*panel_values(caption), f"{aspect}: revised (Undo restores the previous text)."]

                return on_apply, on_definition, on_undo, on_score, on_suggest, on_revise

            on_apply, on_definition, on_undo, on_score, on_suggest, on_revise = make()
            panel["apply"].click(on_apply, [panel["picker"], caption_state, *texts], [*panel_outputs, status],
                                 api_name=f"apply_primitive_{key}")
            panel["picker"].change(on_definition, panel["picker"], panel["definition"],
                                   api_name=f"primitive_definition_{key}", queue=False)
            panel["undo"].click(on_undo, [caption_state, *texts], [*panel_outputs, status], api_name=f"undo_{key}")
            panel["score"].click(on_score, [reference, start, end, caption_state, *texts], [*panel_outputs, status],
                                 api_name=f"score_{key}", **model_job)
            panel["suggest"].click(on_suggest, [reference, start, end, caption_state, *texts],
                                   [panel["critique"], status], api_name=f"critique_{key}",
                                   **model_job)
            panel["revise"].click(on_revise, [reference, start, end, panel["critique"], caption_state, *texts],
                                  [*panel_outputs, status], api_name=f"revise_{key}",
                                  **model_job)

        # Aspect-generic endpoints for API clients (stateless: everything comes in the call).
        @on_model
        @_guard
        @gpu(duration=CAPTION_DURATION)
        def api_score(reference, start, end, aspect, text):
            return steps.score_text(backends, config, reference, start, end, aspect, text)

        @on_model
        @_guard
        @gpu(duration=CAPTION_DURATION)
        def api_critique(reference, start, end, aspect, text):
            return steps.critique_text(backends, config, reference, start, end, aspect, text)

        @on_model
        @_guard
        @gpu(duration=CAPTION_DURATION)
        def api_revise(reference, start, end, aspect, text, critique):
            return steps.revise_text(backends, config, reference, start, end, aspect, text, critique)

        api_score_button.click(api_score, [reference, start, end, api_aspect, api_text], api_reward,
                               api_name="score", **model_job)
        api_critique_button.click(api_critique, [reference, start, end, api_aspect, api_text], api_critique_out,
                                  api_name="critique", **model_job)
        api_revise_button.click(api_revise, [reference, start, end, api_aspect, api_text, api_critique_in],
                                api_revised, api_name="revise", **model_job)

        # Prompt --------------------------------------------------------------------------------
        @gpu(duration=CAPTION_DURATION)
        def merge_with_captioner(caption, mode, words):
            with model_lock:  # the LLM merge runs the captioner: it takes its turn with the model steps
                return steps.compose(backends, config, caption, mode, words)

        @_guard
        def on_compose(mode, max_words, state, *boxes):
            caption = actions.apply_edits(state, boxes, max_chars)
            words = int(actions.number(max_words, "max_words", 20, 320))
            run = merge_with_captioner if mode == "LLM merge" else functools.partial(steps.compose, backends, config)
            text, report = run(caption, mode, words)
            return (text, actions.prompt_meter(text, backends.loaded_tokenizer()), actions.compose_summary(report),
                    *panel_values(caption))

        compose_button.click(on_compose, [compose_mode, max_words, caption_state, *texts],
                             [prompt, meter, compose_report, *panel_outputs], api_name="compose",
                             concurrency_id=COMPOSE_QUEUE, concurrency_limit=COMPOSE_CONCURRENCY)

        def on_prompt_edit(prompt):
            return actions.prompt_meter(prompt, backends.loaded_tokenizer())

        prompt.change(on_prompt_edit, prompt, meter, api_name="prompt_meter", queue=False, show_progress="hidden")

        # Generate ------------------------------------------------------------------------------
        def on_preset_change(name):
            d = steps.generation_defaults(config, name)
            return (gr.update(value=d["seconds"], maximum=d["max_seconds"]),
                    gr.update(choices=d["resolutions"], value=d["resolution"]), d["steps"],
                    d["guidance"], d["shift"])

        model_preset.change(on_preset_change, model_preset, [seconds, resolution, num_steps, guidance, shift],
                            api_name="generation_defaults", queue=False)

        def gpu_seconds(prompt, preset, seconds, resolution, num_steps, *rest, **kwargs):
            try:
                width, height = actions.parse_resolution(resolution)
            except InputError:
                width, height = 1280, 704
            return steps.zerogpu_duration(num_steps, seconds, width, height)

        @on_model
        @_guard
        @gpu(duration=gpu_seconds)
        def on_generate(prompt, preset, seconds, resolution, num_steps, guidance, shift, seed, randomize_seed,
                        negative_prompt, first_frame, reference, start, state, *boxes, mode="auto", short=None,
                        request: gr.Request = None):
            caption = actions.apply_edits(state, boxes, max_chars)
            session = _session(request)
            cancel = threading.Event()
            cancel_events[session] = cancel
            finetuned = finetune_picks.get(session)
            finished = False
            log.info("generation started for session %s", session)
            try:
                for event in steps.generate(backends, config, prompt, preset, seconds, resolution, num_steps, guidance,
                                            shift, seed, randomize_seed, negative_prompt, first_frame, reference,
                                            start, caption, cancel, mode=mode, short_prompt=short,
                                            finetuned=finetuned):
                    if event.done:
                        finished = True
                        result = event.result
                        session_runs.add(_owner(request), Path(result.run_dir).name)
                        right = result.sides[1].label if len(result.sides) > 1 else "—"
                        yield (gr.update(value=str(result.left_video), label=result.sides[0].label),
                               gr.update(value=str(result.right_video) if result.right_video else None, label=right),
                               event.progress["finetuned"], event.progress["baseline"],
                               [str(p) for p in (result.side_by_side_video or result.left_video, result.run_json)],
                               result.seed, event.message, *history_values(_owner(request)))
                    else:
                        yield (gr.update(), gr.update(), event.progress["finetuned"], event.progress["baseline"],
                               gr.update(), event.seed if event.seed is not None else gr.update(), event.message,
                               gr.update(), gr.update())
            finally:
                # Reached early when the run failed, was cancelled or its client went away (Gradio
                # closes the stream): the model stops at its next step instead of running on for nobody.
                if not finished:
                    cancel.set()
                if cancel_events.get(session) is cancel:
                    cancel_events.pop(session, None)

        @_guard
        def on_pick_finetune(choice, request: gr.Request = None):
            steps.chosen_finetune(config, choice)  # refuses anything not in the models folder
            finetune_picks[_session(request)] = choice or ""
            return f"Finetuned slot: {choice or 'as started'}."

        def on_refresh_finetunes():
            return gr.update(choices=steps.finetune_choices(config))

        finetune_menu.change(on_pick_finetune, finetune_menu, status, api_name="pick_finetune", queue=False)
        refresh_finetunes.click(on_refresh_finetunes, None, finetune_menu, api_name="list_finetunes", queue=False)

        generate_button.click(
            on_generate,
            [prompt, model_preset, seconds, resolution, num_steps, guidance, shift, seed, randomize, negative,
             first_frame, reference, start, caption_state, *texts, comparison_mode, short_prompt],
            [finetuned_video, baseline_video, finetuned_progress, baseline_progress, downloads, used_seed, status,
             gallery, run_ids],
            api_name="generate", **model_job,
        )

        def on_cancel(request: gr.Request = None):
            session = _session(request)
            event = cancel_events.get(session)
            if event is None:
                return "Nothing is generating."
            event.set()
            return "Cancelling: the run stops after the current step."

        cancel_button.click(on_cancel, None, status, api_name="cancel", queue=False)

        # History -------------------------------------------------------------------------------
        def history_values(owner: str):
            """The gallery and its run ids: every run, or with per-session history only this visitor's."""
            return steps.history_items(config.output_dir, session_runs.of(owner) if per_session else None)

        def on_refresh(request: gr.Request = None):
            return history_values(_owner(request))

        refresh_history.click(on_refresh, None, [gallery, run_ids], api_name="history")
        page.load(on_refresh, None, [gallery, run_ids], api_name="load_history")

        def on_gpu_check():
            message = steps.gpu_warning(config)
            return gr.update(value=f"**Warning:** {message}" if message else "", visible=bool(message))

        page.load(on_gpu_check, None, gpu_banner, api_name=False, queue=False)

        @_guard
        def on_history_select(run_ids, evt: gr.SelectData, request: gr.Request = None):
            index = evt.index if isinstance(evt.index, int) else evt.index[0]
            if not run_ids or index >= len(run_ids):
                raise gr.Error("That run is no longer listed; press Refresh.")
            return reload_run(run_ids[index], request)

        @_guard
        def reload_run(run_id, request: gr.Request = None):
            if per_session and run_id not in session_runs.of(_owner(request)):
                run_id = None  # another visitor's run reads exactly like a missing one
            run = steps.reload_run(config.output_dir, run_id)
            caption_values = panel_values(run.caption) if run.caption is not None else [gr.update()] * len(panel_outputs)
            s = run.settings
            return (*caption_values, run.prompt, s.get("preset", gr.update()), s.get("seconds", gr.update()),
                    s.get("resolution", gr.update()), s.get("steps", gr.update()), s.get("guidance", gr.update()),
                    s.get("shift", gr.update()), s.get("seed", gr.update()), False,
                    s.get("negative_prompt", gr.update()), run.finetuned_video, run.baseline_video, run.downloads,
                    s.get("seed", gr.update()), run.message)

        reload_outputs = [*panel_outputs, prompt, model_preset, seconds, resolution, num_steps, guidance, shift, seed,
                          randomize, negative, finetuned_video, baseline_video, downloads, used_seed, status]
        gallery.select(on_history_select, run_ids, reload_outputs, api_name="select_run")
        api_run_id = gr.Textbox(visible=False, label="run id")
        api_reload = gr.Button(visible=False)
        api_reload.click(reload_run, api_run_id, reload_outputs, api_name="reload_run")

    # Gradio's own cap is a last guard over every queue; the model's queue has its own, smaller cap.
    page.queue(default_concurrency_limit=8, max_size=config.queue_size * 4 + COMPOSE_CONCURRENCY * 4)
    page.studio_head = SYNC_JS  # used by launch(head=...)
    page.studio_css = CSS
    return page
