"""Uploaded files on disk: the folder they live in, writing one as it arrives, what an image's
size is, and the signed links that serve them (CONTRACT 1.3, "Files and images").

Owns the files folder (beside the database unless --files-dir says otherwise;
mode 0700, each file 0600 and named by its upload's id, never by the name
its uploader gave it), image sniffing for PNG, JPEG, GIF and WebP from the
file's own bytes (the standard library is enough: a few fixed headers), and
the links: /api/v1/files/<id>?expires=<unix>&sig=<hmac>, which work without
a token until they expire, so that an <img> can show them.

Does not own which uploads exist, who uploaded them or which message they
belong to (store.py), who may be given a link (whoever may read the room:
swiftchat_core), or the HTTP of uploading and serving (swiftchat_routes).
"""

import hashlib
import hmac
import logging
import os
import re
import stat
import struct
import time

__all__ = ["FileFolder", "FileTooLarge", "LinkSigner", "image_info", "served_type",
           "LINK_HOURS", "CHUNK"]

log = logging.getLogger("swiftchat.files")

CHUNK = 64 * 1024  # bytes read from the socket, or from a file, at a time
LINK_HOURS = 25  # a link works at least this long after it was made (the contract's 24, and an hour)
HEAD = 32  # bytes of a file's start that show a PNG's, GIF's or WebP's size
JPEG_SEGMENTS = 64  # a JPEG's segments walked at most to its size (a photo has a dozen or so)
# The names the folder's own files have: an upload's id ('file_' and 8 hex digits, store.py),
# and the .part it is written to first. A sweep deletes nothing else.
OWN_FILE = re.compile(r"file_[0-9a-f]{8}(\.part)?")
SIGNATURE = re.compile(r"[0-9a-f]{32}")  # what LinkSigner._sign makes
DECLARED_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")


class FileTooLarge(Exception):
    """The body grew past the size limit as it arrived; nothing of it is kept."""


class FileFolder:
    """The folder of uploaded files: one file per upload, named by its id."""

    def __init__(self, path):
        self.path = str(path)
        try:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            if stat.S_IMODE(os.stat(self.path).st_mode) != 0o700:
                os.chmod(self.path, 0o700)  # an existing folder others could read is tightened
        except OSError as exc:  # a read-only disk: the server still serves what it can
            log.warning("uploads are off: cannot make the files folder %s (%s)", self.path,
                        exc.strerror)

    def file_of(self, upload_id):
        # Upload ids are ours ('file_' and hex digits, store.py), never a client's text.
        return os.path.join(self.path, upload_id)

    def receive(self, upload_id, read, size, max_size):
        """Write `size` bytes from read(n) to the upload's file, CHUNK at a time; return the
        bytes written.

        Why a chunk at a time: memory per upload stays at one chunk whatever
        the file's size. Raises FileTooLarge before writing anything past
        max_size, and EOFError when the body ends early (the client went):
        either way nothing of it is kept.
        """
        if size > max_size:
            raise FileTooLarge(size)
        partial = self.file_of(upload_id) + ".part"
        written = 0
        try:
            # O_EXCL: never through a file (or a link) someone else put there.
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                           "wb") as out:
                while written < size:
                    chunk = read(min(CHUNK, size - written))
                    if not chunk:
                        raise EOFError(f"the body ended after {written} of {size} bytes")
                    out.write(chunk)
                    written += len(chunk)
            os.link(partial, self.file_of(upload_id))  # never over another upload's file
        finally:
            self.delete([os.path.basename(partial)])
        return written

    def image_info(self, upload_id):
        """image_info of an upload's file (None if it is gone)."""
        try:
            with open(self.file_of(upload_id), "rb") as file:
                return image_info(file)
        except FileNotFoundError:
            return None

    def open(self, upload_id):
        """The upload's file, open for reading; FileNotFoundError if it is gone."""
        return open(self.file_of(upload_id), "rb")

    def delete(self, upload_ids):
        """Delete these uploads' files (those already gone are no error)."""
        for upload_id in upload_ids:
            try:
                os.unlink(self.file_of(upload_id))
            except FileNotFoundError:
                pass

    def older_than(self, seconds):
        """The names of the folder's own files (OWN_FILE) last changed more than `seconds` ago
        (a sweep's candidates: files no upload owns, left by a crash between writing and
        recording). Anything else someone put in a --files-dir is left alone."""
        cutoff = time.time() - seconds
        with os.scandir(self.path) as entries:
            return [entry.name for entry in entries
                    if OWN_FILE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
                    and entry.stat().st_mtime < cutoff]


# -- what a file is, from its own bytes ----------------------------------------------------

def image_info(file):
    """(content type, width, height) of a PNG, GIF, WebP or JPEG, from the bytes of a file open
    for reading; else None.

    Only the bytes decide: a declared type, or a file name, can say anything.
    """
    head = file.read(HEAD)
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return "image/png", width, height
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return "image/gif", width, height
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        return webp_info(head)
    if head[:3] == b"\xff\xd8\xff":
        return jpeg_info(file)
    return None


def webp_info(head):
    chunk = head[12:16]
    if chunk == b"VP8X":  # extended: 24-bit sizes less one
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
    elif chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy: 14-bit sizes
        width, height = (value & 0x3FFF for value in struct.unpack("<HH", head[26:30]))
    elif chunk == b"VP8L" and head[20:21] == b"\x2f":  # lossless: 14-bit sizes less one
        bits = int.from_bytes(head[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    else:
        return None
    return "image/webp", width, height


# JPEG markers that start a frame (SOF0-15, less DHT, JPG and DAC), which holds its size.
JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_info(file):
    """Walk a JPEG's segments (each: FF, marker, 2-byte length) to its frame header.

    By seeking past each segment, not reading it: a phone's photo may carry
    EXIF and colour profiles of 64 KiB each (and several) before its size.
    At most JPEG_SEGMENTS, so a file of tiny segments costs no more.
    """
    at = 2
    for _ in range(JPEG_SEGMENTS):
        file.seek(at)
        segment = file.read(9)
        if len(segment) < 9 or segment[0] != 0xFF:
            return None
        marker = segment[1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in JPEG_FRAMES:
            height, width = struct.unpack(">HH", segment[5:9])
            return "image/jpeg", width, height
        if marker == 0xDA:  # the image data starts: no frame header before it
            return None
        length = struct.unpack(">H", segment[2:4])[0]
        if length < 2:
            return None
        at += 2 + length
    return None


def served_type(declared, image):
    """The content type an upload is described with: the image type its bytes show; else
    the declared type, if it is a well-formed type that claims no image (an image its bytes
    do not show is not one); else application/octet-stream."""
    if image is not None:
        return image[0]
    declared = (declared or "").split(";")[0].strip().lower()
    if DECLARED_TYPE.fullmatch(declared) and not declared.startswith("image/"):
        return declared
    return "application/octet-stream"


# -- links that work without a token ---------------------------------------------------------

class LinkSigner:
    """Links to files, signed so that they work without a token until they expire.

    A link is made for someone who may read the room its file is in; it
    works for anyone who has it, as a link in any chat does, for LINK_HOURS
    at least. expires is rounded up to the hour, so that every link to one
    file made within an hour is the same text: a broadcast frame is encoded
    once for all its readers.
    """

    def __init__(self, secret):
        # A key of its own, derived from the server's secret: a file link can
        # never be taken for a token, or a token for a file link.
        self._key = hmac.new(secret.encode(), b"swiftchat file links", hashlib.sha256).digest()

    def url(self, upload_id, now=None):
        now = time.time() if now is None else now
        expires = (int(now) // 3600 + LINK_HOURS + 1) * 3600
        return f"/api/v1/files/{upload_id}?expires={expires}&sig={self._sign(upload_id, expires)}"

    def check(self, upload_id, expires, sig, now=None):
        """'ok', 'expired' or 'bad' for a link's parts (texts, as the query gave them)."""
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12
                and SIGNATURE.fullmatch(sig)):
            return "bad"
        if not hmac.compare_digest(self._sign(upload_id, int(expires)), sig):
            return "bad"
        return "ok" if int(expires) > (time.time() if now is None else now) else "expired"

    def _sign(self, upload_id, expires):
        message = f"{upload_id}:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]
