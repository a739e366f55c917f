"""Part 1: the serving path per image (decode + preprocess + model), ours versus the seed's.

Ours: lesion_model.scorer.MelanomaScorer.score_bytes (what classifier.inference calls in the worker), in this
process, with the worker's thread count. The seed's: Keras MobileNetV2 + PIL resize + `model.predict`, in a
subprocess (bench.keras_baseline) so that TensorFlow never loads here. Both run in the same `make bench`,
so the ratio holds on a busy machine.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from pathlib import Path

from bench.common import PYTHON, REPO, Results, SampleImage, log, median, time_calls_ms


def _stage_breakdown(scorer, data: bytes, *, repeats: int, warmup: int) -> dict[str, float]:
    """Median ms of decode+resize, normalisation and the model alone: where the time goes."""
    from lesion_model.preprocessing import load_image, to_model_input  # noqa: PLC0415

    image = load_image(data, scorer.input_size)
    model_input = to_model_input(image, scorer.normalisation)
    return {
        "decode_resize": median(
            time_calls_ms(lambda: load_image(data, scorer.input_size), repeats=repeats, warmup=warmup)
        ),
        "normalise": median(
            time_calls_ms(lambda: to_model_input(image, scorer.normalisation), repeats=repeats, warmup=warmup)
        ),
        "model": median(time_calls_ms(lambda: scorer.score_array(model_input), repeats=repeats, warmup=warmup)),
    }


def run_keras_baseline(model_dir: Path, images: list[SampleImage], *, repeats: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="melanoma-bench-keras-") as folder:
        arguments = []
        for index, image in enumerate(images):
            path = Path(folder) / f"image{index}.jpg"
            path.write_bytes(image.data)
            arguments += ["--image", f"{image.label}={path}"]
        completed = subprocess.run(  # noqa: S603
            [
                PYTHON,
                "-m",
                "bench.keras_baseline",
                "--model-dir",
                str(model_dir),
                "--repeats",
                str(repeats),
                "--warmup",
                str(warmup),
                *arguments,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if completed.returncode != 0:
        raise RuntimeError(f"Keras baseline failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def bench_serving(
    results: Results, model_dir: Path, images: tuple[SampleImage, SampleImage], *, repeats: int, warmup: int
) -> None:
    from lesion_model.litert import default_num_threads  # noqa: PLC0415 - no TensorFlow
    from lesion_model.scorer import MelanomaScorer  # noqa: PLC0415

    worker_threads = default_num_threads()
    scorer = MelanomaScorer(model_dir)
    # The other thread count, for comparison: 1 thread if the worker uses more, else 2.
    other_threads = 1 if worker_threads > 1 else 2
    scorer_other = MelanomaScorer(model_dir, num_threads=other_threads)
    ours_timings: dict[str, list[float]] = {}

    def measure_ours() -> None:
        for image in images:
            ours_timings.setdefault(image.label, []).extend(
                time_calls_ms(lambda data=image.data: scorer.score_bytes(data), repeats=repeats, warmup=warmup)
            )

    # Ours runs before and after the seed's subprocess and the timings are pooled, so that a change in the
    # machine's load during the run weighs on both sides of the ratio.
    log("serving, ours (first half)")
    measure_ours()
    log("serving, seed's way: Keras model.predict in a subprocess (TensorFlow import takes a while)")
    baseline = run_keras_baseline(model_dir, list(images), repeats=repeats, warmup=warmup)
    log("serving, ours (second half)")
    measure_ours()
    ours = {label: median(timings) for label, timings in ours_timings.items()}
    for image in images:
        stages = _stage_breakdown(scorer, image.data, repeats=repeats, warmup=warmup)
        probability = scorer.score_bytes(image.data)
        if not math.isfinite(probability):
            results.notes.append(f"WARNING: the model returned {probability} for the {image.label}: broken export?")
        results.add(
            "1 serving",
            f"ours LiteRT, {image.label}",
            ours[image.label],
            "ms/image",
            f"{worker_threads} thread(s) as in the worker, {2 * repeats} runs; "
            f"decode+resize {stages['decode_resize']:.1f}, normalise {stages['normalise']:.2f}, "
            f"model {stages['model']:.1f} ms",
        )
        timings_other = time_calls_ms(
            lambda data=image.data: scorer_other.score_bytes(data), repeats=repeats, warmup=warmup
        )
        results.add(
            "1 serving",
            f"ours LiteRT {other_threads} thread(s), {image.label}",
            median(timings_other),
            "ms/image",
            "for comparison (MELANOMA_INFERENCE_THREADS)",
        )

    for index, image in enumerate(images):
        measured = baseline["images"][image.label]
        seed_ms = median(measured["ms"])
        speedup = seed_ms / ours[image.label]
        results.add(
            "1 serving",
            f"seed Keras model.predict, {image.label}",
            seed_ms,
            "ms/image",
            f"PIL resize + predict; model.predict alone {median(measured['model_only_ms']):.1f} ms; "
            f"{baseline['model']}",
        )
        results.add("1 serving", f"speed-up ours vs seed, {image.label}", speedup, "x")
        if index == 0:
            results.summary["serve_speedup"] = speedup
        else:
            results.summary["serve_ms_full_photo"] = ours[image.label]
    results.add(
        "4 memory",
        "seed Keras process RSS after predictions",
        baseline["rss_mib"],
        "MiB",
        f"start to first prediction {baseline['start_to_first_prediction_s']:.1f} s (for comparison)",
    )
    results.notes.append(f"serving images: {images[0].source}; {images[1].source}")
