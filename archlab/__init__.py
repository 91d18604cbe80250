"""archlab: search, profile, train and ship video networks built from P3D block mixes."""

from .errors import UserError
from .genome import Genome, GenomeError, Stage, parse

__version__ = "0.1.0"
__all__ = ["Genome", "GenomeError", "Stage", "UserError", "parse", "__version__"]
