"""Reflinks: a file copy that shares the extents copy-on-write (the FICLONE ioctl).

btrfs, XFS with reflink, bcachefs and ZFS 2.2+ support it; a later write to either file
never reaches the other. That is what the object cache needs and what a hard link would
break: a task writing a cached file in place would corrupt the cache. On filesystems
without reflinks (ext4, tmpfs, overlayfs) `clone` says so and the caller copies.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading

FICLONE = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h
_NO_CLONE = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM}
_no_clone_devices: set[int] = set()
_lock = threading.Lock()


def clone(source_fd: int, target_fd: int) -> bool:
    """Reflink all of `source_fd` into the empty `target_fd`; False when the filesystem cannot."""
    device = os.fstat(target_fd).st_dev
    if device in _no_clone_devices:
        return False
    try:
        fcntl.ioctl(target_fd, FICLONE, source_fd)
    except OSError as error:
        if error.errno not in _NO_CLONE:
            raise
        with _lock:
            _no_clone_devices.add(device)  # one failed ioctl per filesystem, not one per file
        return False
    return True
