"""The resize workload's filter in plain Python, written from its specification in
wasm_src/resize.rs, so tests can check the guest's output pixels byte for byte.

Area average on a common integer axis: source pixel i spans [i*W2, (i+1)*W2) and target pixel j
spans [j*W, (j+1)*W) (rows likewise with H, H2); a target channel is the overlap-weighted sum
of source values divided by W*H, rounded half up in integer arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(rb"P6(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)\s")


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    pixels: bytes  # row-major RGB

    def to_ppm(self) -> bytes:
        return b"P6\n%d %d\n255\n" % (self.width, self.height) + self.pixels


def parse_ppm(data: bytes) -> Image:
    match = _HEADER.match(data)
    if match is None:
        raise ValueError("not a binary PPM with a P6 header")
    width, height, maxval = (int(g) for g in match.groups())
    if maxval != 255:
        raise ValueError(f"maxval {maxval} is not supported")
    pixels = data[match.end() : match.end() + width * height * 3]
    if len(pixels) != width * height * 3:
        raise ValueError("truncated pixel data")
    return Image(width, height, pixels)


def sample_image(width: int, height: int) -> Image:
    """A picture with gradients, a hard edge and a checkerboard, so averaging errors show."""
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            checker = 255 if (x // 3 + y // 3) % 2 else 0
            edge = 240 if x * 3 < width else 15
            red = (x * 255) // max(width - 1, 1)
            pixels += bytes((red, (y * 37 + x * 11) % 256, checker ^ edge))
    return Image(width, height, bytes(pixels))


def _taps(source: int, target: int) -> list[list[tuple[int, int]]]:
    taps = []
    for j in range(target):
        lo, hi = j * source, (j + 1) * source
        taps.append(
            [
                (i, min(hi, (i + 1) * target) - max(lo, i * target))
                for i in range(lo // target, (hi - 1) // target + 1)
            ]
        )
    return taps


def resize(image: Image, width: int, height: int) -> Image:
    """The two-dimensional formula, evaluated directly (not separably like the guest)."""
    wx = _taps(image.width, width)
    wy = _taps(image.height, height)
    total = image.width * image.height
    src = image.pixels
    out = bytearray()
    for y_taps in wy:
        for x_taps in wx:
            for c in range(3):
                acc = 0
                for sy, w_y in y_taps:
                    row = sy * image.width
                    for sx, w_x in x_taps:
                        acc += w_y * w_x * src[(row + sx) * 3 + c]
                out.append((acc + total // 2) // total)
    return Image(width, height, bytes(out))
