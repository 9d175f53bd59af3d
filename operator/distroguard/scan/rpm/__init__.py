"""rpm package databases, read from the bytes of the database file: the three formats rpm writes.

header.py   one package's header blob -> name, epoch, version, release, arch (length-checked)
sqlite.py   `rpmdb.sqlite` (rpm >= 4.16: RHEL/UBI 9+, Fedora 33+, Amazon Linux 2023), through the standard
            library's sqlite3 on an in-memory copy, never a file on disk
bdb.py      Berkeley DB hash `Packages` (RHEL/CentOS 5-8, Amazon Linux 2): our own reader
ndb.py      rpm's own `Packages.db` (SUSE): our own reader
packages.py which file is which format, the wanted packages, and the compact summary the scan keeps

Every reader is bounded: by the bytes it is given (the capture rule caps them), by the number of headers
and of pages it visits, and it answers a corrupt database with `RpmDatabaseError`, never a crash.
"""
