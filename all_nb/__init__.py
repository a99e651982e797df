__version__ = "0.0.1"
from . import core  # first: its warnings filter is in place before any module imports fastai or timm
