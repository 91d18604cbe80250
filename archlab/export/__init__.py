"""Ship one architecture as a standalone model: a torch.export program, ONNX, and a model card.

One concern per module, data flowing one way:

    select.py   which trial of a study to export (the ranking rule, in its docstring)
    source.py   what is exported: genome + weights + what the study knows (reads the study
                through archlab.results.reader, the one reader of a study directory)
    verify.py   exported files against eager torch on fresh clips (nothing ships otherwise)
    card.py     model_card.json and MODEL_CARD.md
    run.py      export(): the steps above into a temp directory renamed into place

model.pt2 / model.onnx are written and loaded back by ``archlab.measure.graph_files`` (a lower
layer: latency measurement uses the same writers).

The names below are the package's API (``from archlab.export import export, resolve_source``).
"""

from ..measure.graph_files import (
    FILE_NAMES,
    FORMATS,
    INPUT_NAME,
    OUTPUT_NAME,
    Clip,
    Runner,
    export_onnx,
    export_pt2,
    load_onnx,
    load_pt2,
)
from .card import form_card, how_to_load, model_card, render_card, sha256
from .run import DEFAULT_CLIP, ExportResult, default_out_dir, export
from .select import ACCURACY, LIMIT_COLUMNS, select_trial
from .source import Source, build_model, check_fits, load_checkpoint, resolve_source
from .verify import (
    ABS_FLOOR,
    BF16_REL_TOL,
    EXAMPLE_BATCH,
    REL_TOL,
    VERIFY_BATCHES,
    Check,
    VerificationError,
    compare,
    random_clips,
    verify,
)

__all__ = [
    "ABS_FLOOR",
    "ACCURACY",
    "BF16_REL_TOL",
    "Check",
    "Clip",
    "DEFAULT_CLIP",
    "EXAMPLE_BATCH",
    "ExportResult",
    "FILE_NAMES",
    "FORMATS",
    "INPUT_NAME",
    "LIMIT_COLUMNS",
    "OUTPUT_NAME",
    "REL_TOL",
    "Runner",
    "Source",
    "VERIFY_BATCHES",
    "VerificationError",
    "build_model",
    "check_fits",
    "compare",
    "default_out_dir",
    "export",
    "export_onnx",
    "export_pt2",
    "form_card",
    "how_to_load",
    "load_checkpoint",
    "load_onnx",
    "load_pt2",
    "model_card",
    "random_clips",
    "render_card",
    "resolve_source",
    "select_trial",
    "sha256",
    "verify",
]
