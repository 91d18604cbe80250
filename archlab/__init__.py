"""archlab: search, profile, train and ship video networks built from P3D block mixes."""

from .util.errors import UserError
from .util.versions import __version__
from .model.genome import Genome, GenomeError, Stage, parse

__all__ = ["Genome", "GenomeError", "Stage", "UserError", "parse", "__version__"]
