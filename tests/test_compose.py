import torch
from u2video.compose import alpha_to_uint8, over


def test_alpha_to_uint8_rounds():
    a = torch.tensor([0.0, 0.5, 1.0, 0.002, 0.998])
    assert alpha_to_uint8(a).tolist() == [0, 128, 255, 1, 254]


def test_over():
    fg = torch.full((1, 3, 1, 1), 200.0)
    bg = torch.full((1, 3, 1, 1), 100.0)
    a = torch.full((1, 1, 1, 1), 0.25)
    assert over(fg, a, bg).tolist() == [[[[125, 125, 125]]]]
