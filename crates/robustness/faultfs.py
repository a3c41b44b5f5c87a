#!/usr/bin/python3
"""faultfs: a pass-through FUSE file system that fails one kind of I/O call.

The robustness suite mounts it over a member's data directory (the files stay in a
backing directory) so that the kernel, not a failpoint in chorus, returns the error:

    faultfs.py BACKING MOUNTPOINT --op fsync --path 'member/wal/*.wal' --errno EIO --after 30

lets 30 matching calls through, then fails that call and every later matching one (a
disk that went bad stays bad) until it is unmounted. With `--armed-by FILE` nothing is
counted or failed until FILE exists (a test creates it once the member is up). `--op` is fsync (fsync and
fdatasync), write or read; `--path` is a glob over the path inside the mount. The line
`faultfs: failing <op> <path>` goes to standard error when the fault first strikes.

Needs /dev/fuse and python3-fusepy (Debian); runs in the foreground until unmounted
(`fusermount3 -u MOUNTPOINT` or `umount MOUNTPOINT`).
"""

import argparse
import errno
import fnmatch
import os
import sys
import threading

from fusepy import FUSE, FuseOSError, Operations


class FaultFs(Operations):
    def __init__(self, root, op, pattern, err, after, armed_by=None):
        self.root = root
        self.armed_by = armed_by
        self.op = op
        self.pattern = pattern
        self.err = err
        self.left = after
        self.failing = False
        self.mutex = threading.Lock()

    def _real(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _strike(self, op, path):
        """Raises the fault's error when `op` on `path` is one it fails."""
        if op != self.op or not fnmatch.fnmatch(path.lstrip("/"), self.pattern):
            return
        if self.armed_by and not os.path.exists(self.armed_by):
            return
        with self.mutex:
            if not self.failing:
                if self.left > 0:
                    self.left -= 1
                    return
                self.failing = True
                print(f"faultfs: failing {op} {path}", file=sys.stderr, flush=True)
        raise FuseOSError(self.err)

    @staticmethod
    def _os(call, *args):
        try:
            return call(*args)
        except OSError as e:
            raise FuseOSError(e.errno or errno.EIO)

    # Metadata.
    def access(self, path, mode):
        if not os.access(self._real(path), mode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path, fh=None):
        st = self._os(os.lstat, self._real(path))
        keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
                "st_size", "st_uid", "st_blocks")
        return {k: getattr(st, k) for k in keys}

    def readdir(self, path, fh):
        return [".", ".."] + self._os(os.listdir, self._real(path))

    def statfs(self, path):
        st = self._os(os.statvfs, self._real(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                "f_files", "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(st, k) for k in keys}

    def chmod(self, path, mode):
        return self._os(os.chmod, self._real(path), mode)

    def chown(self, path, uid, gid):
        return self._os(os.chown, self._real(path), uid, gid)

    def utimens(self, path, times=None):
        return self._os(os.utime, self._real(path), times)

    def readlink(self, path):
        return self._os(os.readlink, self._real(path))

    def mkdir(self, path, mode):
        return self._os(os.mkdir, self._real(path), mode)

    def rmdir(self, path):
        return self._os(os.rmdir, self._real(path))

    def unlink(self, path):
        return self._os(os.unlink, self._real(path))

    def symlink(self, target, source):
        return self._os(os.symlink, source, self._real(target))

    def link(self, target, source):
        return self._os(os.link, self._real(source), self._real(target))

    def rename(self, old, new):
        return self._os(os.rename, self._real(old), self._real(new))

    # Files.
    def open(self, path, flags):
        return self._os(os.open, self._real(path), flags)

    def create(self, path, mode, fi=None):
        return self._os(os.open, self._real(path), os.O_RDWR | os.O_CREAT, mode)

    def read(self, path, size, offset, fh):
        self._strike("read", path)
        return self._os(os.pread, fh, size, offset)

    def write(self, path, data, offset, fh):
        self._strike("write", path)
        return self._os(os.pwrite, fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is None:
            return self._os(os.truncate, self._real(path), length)
        return self._os(os.ftruncate, fh, length)

    def fsync(self, path, datasync, fh):
        self._strike("fsync", path)
        return self._os(os.fdatasync if datasync else os.fsync, fh)

    def fsyncdir(self, path, datasync, fh):
        fd = self._os(os.open, self._real(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            return self._os(os.fsync, fd)
        finally:
            os.close(fd)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return self._os(os.close, fh)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("backing")
    p.add_argument("mountpoint")
    p.add_argument("--op", choices=["fsync", "write", "read"], required=True)
    p.add_argument("--path", required=True, help="glob over the path inside the mount")
    p.add_argument("--errno", default="EIO", help="EIO, ENOSPC, ...")
    p.add_argument("--after", type=int, default=0, help="matching calls let through first")
    p.add_argument("--armed-by", help="count and fail nothing until this file exists")
    a = p.parse_args()
    err = getattr(errno, a.errno, None)
    if not isinstance(err, int):
        p.error(f"unknown errno {a.errno}")
    armed_by = os.path.abspath(a.armed_by) if a.armed_by else None
    fs = FaultFs(os.path.realpath(a.backing), a.op, a.path, err, a.after, armed_by)
    FUSE(fs, a.mountpoint, foreground=True, nothreads=False, default_permissions=True)


if __name__ == "__main__":
    main()
