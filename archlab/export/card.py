"""The model card: everything a user of the exported files needs, as JSON
(``model_card.json``) and as the same dict rendered for people (``MODEL_CARD.md``)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from ..measure.graph_files import FILE_NAMES, FORMATS, INPUT_NAME, OUTPUT_NAME, Clip, clip_str
from ..training import calibrate
from ..util.errors import UserError
from ..util.tables import md_table
from ..util.versions import EXPORT, versions
from .source import Source
from .verify import EXAMPLE_BATCH, REL_TOL, VERIFY_BATCHES, Check


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def how_to_load(clip: Clip, classes: int) -> dict[str, str]:
    """Five lines each, runnable as they stand from the export directory."""
    shape = ", ".join(map(str, (2, 3, *clip)))
    torch_snippet = "\n".join(
        [
            "import torch",
            f'model = torch.export.load("{FILE_NAMES["pt2"]}").module()',
            f"clip = torch.randn({shape})  # [B, 3, T, H, W] float32, normalised with mean/std",
            "with torch.no_grad():",
            f"    logits = model(clip)  # [B, {classes}]",
        ]
    )
    ort_snippet = "\n".join(
        [
            "import numpy as np, onnxruntime as ort",
            f'session = ort.InferenceSession("{FILE_NAMES["onnx"]}", providers=["CPUExecutionProvider"])',
            f"clip = np.random.randn({shape}).astype(np.float32)  # [B, 3, T, H, W], normalised",
            f'logits = session.run(["{OUTPUT_NAME}"], {{"{INPUT_NAME}": clip}})[0]  # [B, {classes}]',
            "print(logits.argmax(axis=1))",
        ]
    )
    return {"torch": torch_snippet, "onnxruntime": ort_snippet}


def model_card(
    src: Source,
    clip: Clip,
    classes: list[str],
    params: int,
    macs: int,
    files: dict[str, dict[str, Any]],
    checks: list[Check],
    folder: Path,
) -> dict[str, Any]:
    """Everything a user of the files needs, as JSON (MODEL_CARD.md renders the same dict)."""
    t, h, w = clip
    onnx_info = None
    if FILE_NAMES["onnx"] in files:
        import onnx  # only for a card of an ONNX export

        m = onnx.load(str(folder / FILE_NAMES["onnx"]), load_external_data=False)
        onnx_info = {
            "opset": next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None),
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
        }
    return {
        "card_version": 1,
        "what": what_it_is(src, clip),
        "role": src.role,
        "genome": str(src.genome),
        "genome_id": src.genome.id,
        "input": {
            "name": INPUT_NAME,
            "layout": "[B, 3, T, H, W]",
            "dtype": "float32",
            "batch": "dynamic (>= 1)",
            "frames": t,
            "height": h,
            "width": w,
            "size": h if h == w else None,
            "channels": "RGB",
            "mean": src.mean,
            "std": src.std,
            "normalisation": (
                "(x / 255 - mean) / std per channel, x = uint8 RGB frames (as archlab's loader feeds training)"
            )
            if src.mean is not None
            else "not recorded (no training input spec came with the weights)",
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": f"[B, {len(classes)}]",
            "meaning": "class logits (softmax for probabilities)",
        },
        "classes": classes,
        "params": params,
        "macs": macs,
        "gmacs": macs / 1e9,
        "macs_note": f"multiply-adds of conv and linear layers for one {clip_str(clip)} clip",
        "weights": src.weights,
        "study": None if src.study_dir is None else {"name": src.study_name, "selection": src.selection},
        "trial": src.trial,
        "files": files,
        "verification": {
            "batches": list(VERIFY_BATCHES),
            "example_batch": EXAMPLE_BATCH,
            "rel_tol": REL_TOL,
            "rule": "max |exported - eager| <= rel_tol * max |eager| on fresh random clips",
            "exported_form": "inference form: BatchNorm folded into the convs it follows; eager is the unfolded network",
            "checks": [asdict(c) for c in checks],
        },
        "onnx": onnx_info,
        "versions": versions(EXPORT),
        "how_to_load": {
            k: v
            for k, v in how_to_load(clip, len(classes)).items()
            if (k == "torch" and FILE_NAMES["pt2"] in files) or (k == "onnxruntime" and onnx_info)
        },
    }


def form_card(form: Any, formats: Sequence[str]) -> dict[str, Any]:
    """Which form each file runs in, and what this machine's calibration measured (if it
    was calibrated: ``archlab calibrate``; a cached one is read, never measured), for the card."""
    out: dict[str, Any] = {
        "pt2": form.name if "pt2" in formats else None,
        "onnx": "fp32/ncdhw" if "onnx" in formats else None,
        "interface": "float32 [B, 3, T, H, W] in, float32 logits out, whatever the form",
        "calibration": None,
    }
    try:
        cal = calibrate.load("cpu") if calibrate.mode() != "off" else None
    except UserError:
        cal = None
    if cal is not None:
        out["calibration"] = {
            "cpu": cal.machine.get("cpu"),
            "torch": cal.machine.get("torch"),
            "created": cal.created,
            "chosen_inference": cal.inference,
            "measured_on": f"{cal.settings.get('infer_genome')} "
            f"1x{'x'.join(map(str, cal.settings.get('infer_clip', [])))}",
            "inference": [
                {
                    "form": r.form,
                    "median_ms": r.median_ms,
                    "speedup_vs_fp32": r.speedup,
                    "max_rel_err": r.numerics,
                    "ok": r.ok,
                }
                for r in cal.rows
                if r.kind == "inference"
            ],
        }
    return out


def what_it_is(src: Any, clip: Any) -> str:
    """The card's first line: whether these weights were trained, and whether this network is
    the one a study's costs are of (its target) or the proxy a trial trained."""
    trained = src.weights.get("kind") != "none"
    if src.role == "target":
        if not trained:
            return (
                f"UNTRAINED: the study's target network at {clip_str(clip)}, freshly initialised. Train it "
                "(archlab train STUDY --rank N --out DIR) and export again with --weights DIR/best.pt"
            )
        return f"The study's target network at {clip_str(clip)}, with the weights of {src.weights.get('path')}"
    if src.role == "proxy":
        return (
            f"PROXY: the reduced network a search trial trained to estimate its target's accuracy, at "
            f"{clip_str(clip)}; not the network the study's costs are of"
        )
    return "UNTRAINED: freshly initialised weights" if not trained else f"Weights: {src.weights.get('path', 'given')}"


def render_card(card: dict[str, Any]) -> str:
    """MODEL_CARD.md: the JSON card for people; its first line says what the network is."""
    inp = card["input"]
    lines = [
        f"**{card['what']}**",
        "",
        f"# Model card: `{card['genome']}`",
        "",
        f"- genome id: `{card['genome_id']}`",
        f"- parameters: {card['params']:,}",
        f"- GMACs: {card['gmacs']:.4g} ({card['macs_note']})",
        f"- input `{inp['name']}`: float32 {inp['layout']}, batch {inp['batch']}, T={inp['frames']}, "
        f"H={inp['height']}, W={inp['width']}, RGB",
        "- normalisation: "
        + (f"mean {inp['mean']}, std {inp['std']}: " if inp["mean"] is not None else "")
        + inp["normalisation"],
        f"- output `{card['output']['name']}`: {card['output']['shape']} {card['output']['meaning']}",
        f"- weights: {_weights_words(card['weights'])}",
    ]
    if card["study"]:
        lines.append(f"- study `{card['study']['name']}`, chosen as {card['study']['selection']}")
    classes = card["classes"]
    lines += ["", f"## Classes ({len(classes)})", "", ", ".join(f"{i}: {c}" for i, c in enumerate(classes))]
    if card["trial"]:
        lines += [
            "",
            "## Search metrics of its trial",
            "",
            md_table(["metric", "value"], [[k, v] for k, v in card["trial"].items()]),
        ]
    fc = card.get("form")
    if fc:
        runs_in = ", ".join(f"{FILE_NAMES[k]} runs in `{fc[k]}`" for k in FORMATS if fc.get(k))
        lines += [
            "",
            "## Form",
            "",
            f"{runs_in} ({fc['interface']}); verified within {fc.get('pt2_rel_tol', REL_TOL):g} of the output scale.",
        ]
        cal = fc.get("calibration")
        if cal:
            lines += [
                "",
                f"Inference forms measured by `archlab calibrate` on {cal['cpu']} (torch {cal['torch']}, "
                f"{cal['created']}, {cal['measured_on']}); chosen: "
                + ", ".join(f"{f} at {t} thread(s)" for t, f in cal["chosen_inference"].items())
                + ":",
                "",
                md_table(
                    ["form", "median ms", "vs fp32", "max rel err", "ok"],
                    [
                        [
                            r["form"],
                            f"{r['median_ms']:.1f}",
                            f"{r['speedup_vs_fp32']:.2f}x",
                            f"{r['max_rel_err']:.1e}",
                            "yes" if r["ok"] else "no",
                        ]
                        for r in cal["inference"]
                    ],
                    right=range(1, 4),
                ),
            ]
    lines += [
        "",
        "## Files",
        "",
        md_table(
            ["file", "bytes", "sha256"],
            [[n, f"{f['bytes']:,}", f"`{f['sha256']}`"] for n, f in card["files"].items()],
            right=[1],
        ),
    ]
    v = card["verification"]
    lines += [
        "",
        "## Verification",
        "",
        f"Exported files loaded back from disk vs eager PyTorch, fresh random clips; example batch "
        f"{v['example_batch']} (traced), pass if {v['rule']} (rel_tol {v['rel_tol']:g}).",
        "",
        md_table(
            ["format", "batch", "max abs err", "max rel err", "tolerance", "ok"],
            [
                [
                    c["format"],
                    c["batch"],
                    f"{c['max_abs_err']:.2e}",
                    f"{c['max_rel_err']:.2e}",
                    f"{c['tol']:.2e}",
                    "yes" if c["ok"] else "NO",
                ]
                for c in v["checks"]
            ],
            right=range(1, 5),
        ),
    ]
    for k, title in (("torch", "PyTorch (no archlab needed)"), ("onnxruntime", "onnxruntime")):
        if k in card["how_to_load"]:
            lines += ["", f"## Load with {title}", "", "```python", card["how_to_load"][k], "```"]
    lines += ["", "## Versions", "", ", ".join(f"{k} {val}" for k, val in card["versions"].items() if val), ""]
    return "\n".join(lines)


def _weights_words(w: dict[str, Any]) -> str:
    if w["kind"] == "none":
        return "untrained: fresh initialisation (seed 0)"
    text = f"{'trial checkpoint' if w['kind'] == 'trial' else 'checkpoint'} `{w.get('path')}`"
    if w.get("epoch") is not None:
        text += f", epoch {w['epoch']}"
    return text
