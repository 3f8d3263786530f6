"""What nstaudio refuses before it starts work, in one place (the README's "What is refused" lists it).

Every file is treated as hostile: a header can claim any sample rate or length, and a small
parameter can ask for more memory than the machine has. These limits turn such requests into
one clear error before any long work starts, instead of a crash, a hang or the kernel's
out-of-memory killer after minutes of work.
"""

import os

# Sample rates a file (or an array's ``sr``) may have. Below 1 kHz nothing audible is left to
# stylize; 768 kHz is the highest rate audio interfaces record. A header outside this range is
# forged or broken (a WAV claiming 1,000,000,007 Hz made the resampler ask for 149 GB).
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000

# Working sample rates (the rate the spectrograms are taken at): the papers' 22.05 kHz and up to
# the high-resolution rates; below 1 kHz there is no timbre left to transfer.
MIN_WORK_RATE = 1000
MAX_WORK_RATE = 384_000

# Channels of one recording: libsndfile's own limit, and far beyond any audio format's layout.
MAX_CHANNELS = 1024

# Decoded audio may take at most this fraction of the machine's memory: the work needs several
# times the audio itself (resampled copies, spectrograms, features, the optimizer's history).
AUDIO_MEMORY_FRACTION = 0.25


def machine_memory():
    """Bytes of memory this process may use: physical memory, or the cgroup's limit if lower.

    Returns
    -------
    int
    """
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:  # a container's limit (cgroup v2); "max" means none
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def audio_memory_limit():
    """Most bytes of decoded float32 audio that one input may take (:data:`AUDIO_MEMORY_FRACTION`)."""
    return int(machine_memory() * AUDIO_MEMORY_FRACTION)


def gigabytes(n_bytes):
    """``n_bytes`` as a short human-readable string ("3.2 GB")."""
    return f"{n_bytes / 1e9:.1f} GB"
