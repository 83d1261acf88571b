"""Pre-training genome data: FASTA/BED reading, the memory-mapped genome store, train/val windows.

Typical use::

    from hadna.data import GenomeDataConfig, GenomeWindows

    data = GenomeWindows.from_config(GenomeDataConfig(fasta=["genome.fa.gz"]))
    batch = data.train_batch(step, batch_size=32, rank=rank, world_size=world_size)  # [32 // W, 1024]
    val = data.val_windows()                                                          # [N, 1024]
"""

from .bed import BedInterval, read_bed
from .config import GenomeDataConfig
from .fasta import iter_fasta, iter_fasta_blocks, read_fasta_dict
from .genome import GenomeStore, default_cache_dir
from .regions import RegionPlan, Regions, plan_regions
from ..sequence import reverse_complement as reverse_complement_ids  # the strand flip of RC augmentation
from .windows import GenomeWindows, WindowProvenance, counter_hash

__all__ = [
    "BedInterval", "GenomeDataConfig", "GenomeStore", "GenomeWindows", "RegionPlan", "Regions",
    "WindowProvenance", "counter_hash", "default_cache_dir", "iter_fasta", "iter_fasta_blocks",
    "plan_regions", "read_bed", "read_fasta_dict", "reverse_complement_ids",
]
