"""Load model artifacts without running code from them.

- scikit-learn models and pipelines in the skops format, with an allow-list: skops' own
  trusted types plus ``CUSTOS_SKOPS_TRUSTED_TYPES`` (scikit-learn by default). An artifact
  holding any other type is refused, and the error names those types.
- XGBoost JSON and UBJSON models, LightGBM text models: data formats, no code.
- pickle and joblib execute code on load, so they are refused unless the operator of a
  trusted deployment sets ``CUSTOS_ALLOW_PICKLE_ARTIFACTS``.

``load_model(model_version)`` returns an object with ``predict`` and ``predict_proba``.
"""

import hashlib
import io
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ..rules.limits import quoted_list

ARTIFACT_DIR = "artifacts"


class ArtifactRefused(ValueError):
    """The artifact does not load safely (untrusted types, a refused format, or corrupt)."""


@dataclass
class LoadedArtifact:
    model: object
    framework: str
    framework_version: str
    feature_names: list


def trusted_skops_type(name: str) -> bool:
    for entry in settings.CUSTOS_SKOPS_TRUSTED_TYPES:
        if name == entry or (entry.endswith(".") and name.startswith(entry)):
            return True
    return False


def _feature_names(model) -> list:
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return []
    return [str(n) for n in names]


def _reason(exc) -> str:
    """The first line of a library's error, without the native source location and stack trace
    (XGBoost's name server paths) that an API client has no business seeing."""
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    line = re.sub(r"^\[[\d:]+\]\s+\S+:\d+:\s*", "", line)
    return line[:300]


def load_artifact_bytes(data: bytes, artifact_format: str) -> LoadedArtifact:
    """Load DATA (the artifact's bytes) as ARTIFACT_FORMAT, safely; raise ArtifactRefused."""
    try:
        loader = _LOADERS[artifact_format]
    except KeyError:
        raise ArtifactRefused(
            f"Unknown artifact format {artifact_format!r}; expected one of {', '.join(_LOADERS)}."
        ) from None
    try:
        return loader(data)
    except ArtifactRefused:
        raise
    except Exception as exc:  # any library's parse error means: this artifact does not load
        raise ArtifactRefused(f"The {artifact_format} artifact does not load: {type(exc).__name__}: {_reason(exc)}") from None


def _load_skops(data):
    # Each framework is imported only to load an artifact of its own format.
    import sklearn
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    refused = sorted(t for t in untrusted if not trusted_skops_type(t))
    if refused:
        raise ArtifactRefused(f"The skops artifact holds types that are not trusted: {quoted_list(refused)}.")
    model = sio.loads(data, trusted=untrusted)
    if not hasattr(model, "predict"):
        raise ArtifactRefused(f"The skops artifact holds a {type(model).__name__}, which has no predict().")
    return LoadedArtifact(model, "scikit-learn", sklearn.__version__, _feature_names(model))


def _load_xgboost(data, fmt):
    import xgboost  # only for XGBoost artifacts

    if fmt == "json":
        json.loads(data)  # a clear error for truncated JSON before XGBoost's own
    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    model = xgboost.XGBClassifier()
    model.load_model(bytearray(data))
    names = booster.feature_names or []
    return LoadedArtifact(model, "xgboost", xgboost.__version__, list(names))


def _load_lightgbm(data):
    import lightgbm  # only for LightGBM artifacts

    from .boosters import LightGBMClassifierModel  # numpy too, which Django's start does without

    booster = lightgbm.Booster(model_str=data.decode("utf-8"))
    return LoadedArtifact(LightGBMClassifierModel(booster), "lightgbm", lightgbm.__version__, booster.feature_name())


def _load_pickled(data, fmt):
    if not settings.CUSTOS_ALLOW_PICKLE_ARTIFACTS:
        raise ArtifactRefused(
            f"{fmt} artifacts run code when loaded and are refused. Save the model with skops "
            "(scikit-learn), as XGBoost JSON/UBJ or LightGBM text; a trusted deployment may set "
            "CUSTOS_ALLOW_PICKLE_ARTIFACTS."
        )
    import joblib  # only for trusted pickled artifacts

    model = joblib.load(io.BytesIO(data))  # only reached when the operator trusts every uploader
    return LoadedArtifact(model, type(model).__module__.split(".")[0], "", _feature_names(model))


_LOADERS = {
    "skops": _load_skops,
    "xgboost-json": lambda d: _load_xgboost(d, "json"),
    "xgboost-ubj": lambda d: _load_xgboost(d, "ubj"),
    "lightgbm-text": _load_lightgbm,
    "pickle": lambda d: _load_pickled(d, "pickle"),
    "joblib": lambda d: _load_pickled(d, "joblib"),
}


def artifact_path(rel: str) -> Path:
    return Path(settings.MEDIA_ROOT) / rel


def artifact_write(data: bytes) -> str:
    """Store artifact bytes under a fresh name; return the path relative to the storage root."""
    rel = f"{ARTIFACT_DIR}/{hashlib.sha256(data).hexdigest()[:2]}/{secrets.token_hex(16)}.bin"
    path = artifact_path(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as fh:
        fh.write(data)
    return rel


def artifact_remove(rel: str) -> None:
    artifact_path(rel).unlink(missing_ok=True)


def artifact_bytes(model_version) -> bytes:
    """Return the stored artifact's bytes after checking them against the registered SHA-256."""
    data = artifact_path(model_version.artifact_path).read_bytes()
    if hashlib.sha256(data).hexdigest() != model_version.artifact_sha256:
        raise ArtifactRefused(f"The stored artifact of model version {model_version.pk} does not match its SHA-256.")
    return data


def load_model(model_version):
    """Load MODEL_VERSION's artifact safely; return an object with predict and predict_proba."""
    return load_artifact_bytes(artifact_bytes(model_version), model_version.artifact_format).model
