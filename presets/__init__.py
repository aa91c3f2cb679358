"""Named presets for u2video, one TOML file each (see ``u2video presets``).

This file only makes the folder installable as ``u2video.builtin_presets`` so that installed copies
find the TOML files too; there is no code here.
"""
