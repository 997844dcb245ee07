"""Image encoders (CNNs) and the user's own features extractors.

- ``NatureCNN``: the DQN network of Mnih et al. (2015), as in Stable-Baselines3 and the A3C
  paper's Atari agents: 32 8x8/4, 64 4x4/2, 64 3x3/1 convolutions, then ``features_dim``
  (512) ReLU features. It needs images of at least 36x36.
- ``SmallCNN``: for small images such as MinAtar's 10x10 (Young and Tian, 2019): 16 3x3/1
  convolutions, then ``features_dim`` (128) ReLU features.

A user's extractor is a torch module class, named "module:Class" in settings and model files.
acrl imports its module only when the user names it on this command (a constructor
argument, ``--set``, a config file given to ``acrl train``); a model file that names it finds
it only among modules already imported (``--env-module``, or the user's own import), so
loading a file never runs code the file names.
"""

from __future__ import annotations

import sys
from typing import Any

from torch import Tensor, nn

from acrl.config.policy import PASSED_CLASSES
from acrl.errors import UserError, first_line
from acrl.user_modules import import_user_module

NATURE_MIN_SIZE = 36  # the smallest height and width NatureCNN's three convolutions take


def conv_size(size: int, kernel: int, stride: int) -> int:
    """The output length of an unpadded convolution."""
    return (size - kernel) // stride + 1


class NatureCNN(nn.Module):
    """Mnih et al.'s convolutions and one ReLU layer of ``features_dim`` features."""

    def __init__(self, channels: int, height: int, width: int, features_dim: int = 512) -> None:
        super().__init__()
        if min(height, width) < NATURE_MIN_SIZE:
            raise ValueError(
                f"NatureCNN needs images of at least {NATURE_MIN_SIZE}x{NATURE_MIN_SIZE}, "
                f"not {height}x{width}: use policy_kwargs.features_extractor_class SmallCNN"
            )
        h, w = height, width
        for kernel, stride in ((8, 4), (4, 2), (3, 1)):
            h, w = conv_size(h, kernel, stride), conv_size(w, kernel, stride)
        self.features_dim = features_dim
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * h * w, features_dim),
            nn.ReLU(),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.cnn(images)


class SmallCNN(nn.Module):
    """One 3x3 convolution of 16 filters and one ReLU layer of ``features_dim`` features."""

    def __init__(self, channels: int, height: int, width: int, features_dim: int = 128) -> None:
        super().__init__()
        if min(height, width) < 3:
            raise ValueError(f"SmallCNN needs images of at least 3x3, not {height}x{width}")
        self.features_dim = features_dim
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16 * (height - 2) * (width - 2), features_dim),
            nn.ReLU(),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.cnn(images)


CNNS: dict[str, type[NatureCNN] | type[SmallCNN]] = {"NatureCNN": NatureCNN, "SmallCNN": SmallCNN}


def make_cnn(name: str, chw: tuple[int, int, int], kwargs: dict[str, Any]) -> NatureCNN | SmallCNN:
    """The built-in CNN ``name`` ("auto": by the image's size) for images of shape ``chw``;
    a one-line ValueError for settings it does not take."""
    if name == "auto":
        name = "NatureCNN" if min(chw[1:]) >= NATURE_MIN_SIZE else "SmallCNN"
    unknown = sorted(set(kwargs) - {"features_dim"})
    if unknown:
        raise ValueError(f"policy_kwargs.features_extractor_kwargs of {name}: unknown {unknown}")
    features = kwargs.get("features_dim", 512 if name == "NatureCNN" else 128)
    if isinstance(features, bool) or not isinstance(features, int) or not 1 <= features <= 2**16:
        raise ValueError(
            f"policy_kwargs.features_extractor_kwargs.features_dim must be an integer in "
            f"[1, 65536], got {features!r}"
        )
    return CNNS[name](*chw, features_dim=features)


def find_class(name: str, may_import: bool) -> type[nn.Module]:
    """The user's class "module:Class". Its module is imported only if ``may_import`` (the
    user named it on this command); otherwise it must already be imported. UserError if not
    found or not a torch module class."""
    module_name, _, qualname = name.partition(":")
    found: Any = PASSED_CLASSES.get(name)
    if found is None:
        module = sys.modules.get(module_name)
        if module is None and may_import:
            try:
                module = import_user_module(module_name)
            except Exception as exc:  # the user's module: any error is theirs, in one line
                raise UserError(
                    f"features_extractor_class {name}: importing {module_name} failed: "
                    f"{type(exc).__name__}: {first_line(exc)}"
                ) from None
        if module is None:
            raise UserError(
                f"this model's features extractor is {name}, and acrl never imports a module "
                f"that a file names: pass --env-module {module_name} (or import it before "
                "loading)"
            )
        found = module
        for part in qualname.split("."):
            found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise UserError(f"features_extractor_class {name} is not a torch module class")
    if found.__module__.split(".")[0] in ("torch", "acrl"):  # a layer, not an extractor
        raise UserError(
            f"features_extractor_class {name} is torch's or acrl's own module: give a class of "
            "yours (or NatureCNN, SmallCNN)"
        )
    return found


def build_user_extractor(
    name: str, observation_space: Any, kwargs: dict[str, Any], may_import: bool
) -> nn.Module:
    """``Class(observation_space, **kwargs)`` for the user's class, as Stable-Baselines3
    builds a features extractor; it must have an integer ``features_dim``."""
    cls = find_class(name, may_import)
    try:
        module = cls(observation_space, **kwargs)
    except Exception as exc:  # the user's code: one line naming it
        raise UserError(
            f"features_extractor_class {name}({observation_space}, **{kwargs}) raised "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from None
    dim = getattr(module, "features_dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise UserError(
            f"features_extractor_class {name} has features_dim {dim!r}: it needs an integer "
            ">= 1 (the size of the features its forward returns)"
        )
    return module
