"""Reading back what the plotting and video commands write."""

import struct
from pathlib import Path

import imageio_ffmpeg


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG file's header."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    return struct.unpack(">II", data[16:24])


def mp4_frames(path: Path) -> tuple[int, tuple[int, int], float]:
    """(decoded frame count, (width, height), fps) of a video file."""
    frames = imageio_ffmpeg.read_frames(str(path))
    meta = next(frames)
    return sum(1 for _ in frames), tuple(meta["size"]), meta["fps"]
