#!/usr/bin/env python3
"""Lists the GPU code in a program's .nv_fatbin section: how many sm_XY
machine-code (SASS) images and compute_XY PTX images it holds. What
`cuobjdump --list-elf --list-ptx` shows, for a machine without cuobjdump
(this one): the fatbin headers are read, the images are not decompressed.

    fatbin_arches.py PROGRAM...      prints "PROGRAM: SASS sm_90 x41, PTX compute_90 x41"
"""
import collections
import os
import struct
import subprocess
import sys
import tempfile

FATBIN_MAGIC = 0xBA55ED50
KINDS = {1: "PTX compute_", 2: "SASS sm_"}


def fatbin_section(program):
    with tempfile.TemporaryDirectory() as folder:
        section = os.path.join(folder, "fatbin")
        subprocess.run(["objcopy", "-O", "binary", "--only-section=.nv_fatbin", program, section], check=True)
        with open(section, "rb") as f:
            return f.read()


def images(data):
    """(kind, arch) of each image. A fatbin is a 16-byte header (magic, version,
    header size, size of what follows) and entries, each a header (kind, _,
    header size, payload size, ..., arch at byte 28) and its payload."""
    offset = 0
    while offset + 16 <= len(data):
        magic, _, header_size, fat_size = struct.unpack_from("<IHHQ", data, offset)
        if magic != FATBIN_MAGIC:  # sections are padded between fatbins
            offset += 8
            continue
        entry, end = offset + header_size, offset + header_size + fat_size
        while entry + 32 <= end:
            kind, _, entry_header, size = struct.unpack_from("<HHIQ", data, entry)
            arch = struct.unpack_from("<I", data, entry + 28)[0]
            yield kind, arch
            entry += entry_header + size
        offset = end


def main():
    for program in sys.argv[1:]:
        counts = collections.Counter(images(fatbin_section(program)))
        listed = [f"{KINDS.get(kind, f'kind {kind} ')}{arch} x{n}" for (kind, arch), n in sorted(counts.items(), reverse=True)]
        print(f"{os.path.basename(program)}: {', '.join(listed) or 'no GPU code'}")


if __name__ == "__main__":
    main()
