"""Configuration of the pre-training genome data (embedded in the recipes' YAML configs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigError


@dataclass
class GenomeDataConfig:
    """Where pre-training windows come from and how they are drawn.

    fasta: FASTA files (plain, gzip or bgzip); records of all files form one genome.
    bed: optional BED of intervals; windows (training and validation) are cut only from inside them.
    bed_split / val_bed_split: keep only the rows of ``bed`` / ``val_bed`` whose 4th column is this
        value (or one of these values). With the HyenaDNA/Basenji split BED as both files:
        ``bed_split: [train, valid]`` and ``val_bed_split: valid`` train on "train" rows, validate on
        "valid" rows and never touch "test" rows (validation is cut from inside ``bed``).
    window_length: nucleotides per window (L).
    max_n_fraction: windows with more than this fraction of N are redrawn. Default 0.01 (at most
        10 N in 1024): N runs in assemblies are long gaps, so the filter mostly drops windows that
        overlap a gap edge; the teacher's 6-mer tokeniser splits at every N and neither model
        learns anything from predicting N, so a small tolerance only admits isolated N's.
    short_record_policy: ``skip`` leaves out records (and BED intervals) shorter than
        window_length, logging how many bases that drops; ``error`` refuses such records.
    val_fraction: by default the last val_fraction of the (usable) bases, in file order, are held
        out for validation. Ignored when val_bed or val_records is given. 0 = no validation set.
    val_per_file: hold out the last ``round(val_fraction x records)`` whole records of *each* FASTA
        file instead of the genome's last bases. For aligned genomes of several species (one file per
        species, records in the same alignment-block order, as in the EPO primate files) this holds
        out the same blocks in every species, so no species' copy of a validation region is trained on.
    duplicate_ids: ``error`` refuses a record id that occurs twice; ``number`` names the repeats
        ``<id>#2``, ``<id>#3``, ... (:mod:`hadna.data.fasta`).
    val_bed / val_records: hold out these intervals / these whole records instead.
    num_val_windows: size of the fixed validation set (evenly spaced non-overlapping tiles).
    rc_augment, rc_prob: reverse-complement each training window with probability rc_prob.
    cache_dir: where the token cache goes; default ``.hadna_cache`` next to the first FASTA if
        writable, else ~/.cache/hadna.
    seed: the training stream is a pure function of (seed, sample index).
    """

    fasta: list[str] = field(default_factory=list)
    bed: str | None = None
    bed_split: str | list[str] | None = None
    window_length: int = 1024
    max_n_fraction: float = 0.01
    short_record_policy: Literal["skip", "error"] = "skip"
    val_fraction: float = 0.1
    val_per_file: bool = False
    duplicate_ids: Literal["error", "number"] = "error"
    val_bed: str | None = None
    val_bed_split: str | None = None
    val_records: list[str] | None = None
    num_val_windows: int = 1024
    rc_augment: bool = True
    rc_prob: float = 0.5
    cache_dir: str | None = None
    seed: int = 0

    def validate(self) -> None:
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"{key}: {why}, got {getattr(self, key)!r}")

        if isinstance(self.fasta, str):  # a single path written without list brackets
            self.fasta = [self.fasta]
        if not self.fasta:
            raise ConfigError("fasta: give at least one FASTA file")
        if self.window_length < 1:
            raise bad("window_length", "must be a positive integer")
        if not 0.0 <= self.max_n_fraction <= 1.0:
            raise bad("max_n_fraction", "must be in [0, 1]")
        if self.short_record_policy not in ("skip", "error"):
            raise bad("short_record_policy", "must be 'skip' or 'error'")
        if not 0.0 <= self.val_fraction < 1.0:
            raise bad("val_fraction", "must be in [0, 1)")
        if self.duplicate_ids not in ("error", "number"):
            raise bad("duplicate_ids", "must be 'error' or 'number'")
        if self.val_per_file and (self.val_bed is not None or self.val_records):
            raise ConfigError("val_per_file: holds out the tail of each file; do not combine it with val_bed or "
                              "val_records")
        if self.bed_split is not None and self.bed is None:
            raise ConfigError("bed_split: set bed too (the BED whose 4th column holds the split)")
        if self.val_bed_split is not None and self.val_bed is None:
            raise ConfigError("val_bed_split: set val_bed too (the BED whose 4th column holds the split)")
        if self.val_bed is not None and self.val_records:
            raise ConfigError("val_bed and val_records: give at most one of them")
        if self.num_val_windows < 0:
            raise bad("num_val_windows", "must be >= 0")
        if not 0.0 <= self.rc_prob <= 1.0:
            raise bad("rc_prob", "must be in [0, 1]")
        if not 0 <= self.seed < 2**64:
            raise bad("seed", "must be in [0, 2**64)")
