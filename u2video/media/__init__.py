"""Reading and writing media: PyAV for video and audio, OpenCV for stills and windows.

OpenCV is imported before PyAV, always: both wheels bundle their own libxcb, and when PyAV's
is loaded first, OpenCV's Qt hangs for good the moment it opens a window (`webcam --preview`).
Every u2video module that imports ``av`` does so after this package (``backgrounds.py`` imports
it explicitly first).
"""

import cv2  # noqa: F401  (before av: see above)
