"""archlab: search, profile, train and ship video networks built from P3D block mixes."""

from .model.genome import Genome, GenomeError, Stage, parse
from .util.errors import UserError
from .util.versions import __version__

__all__ = ["Genome", "GenomeError", "Stage", "UserError", "parse", "__version__"]
