"""Student photos (学生照片, Art. 10): accept an upload, return a clean JPEG and a thumbnail.

Every accepted photo is decoded and re-encoded, never stored as uploaded: that is what removes
the EXIF block (GPS position, phone model, time) of a child's picture, and it makes every stored
photo a small baseline JPEG that prints on a roster and loads over a slow rural link.
"""

import io
import math
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps

from registry.errors import RuleViolation, msg

FIELD = "photo"
LABEL = "学生照片"
MAX_BYTES = 2 * 1024 * 1024
# Far above any real photo that fits in the byte limit (a 2 MB phone JPEG is about 12 MP), far
# below what would hurt: the decoded image costs at most 100 MB (RGBA) for an instant. Checked on
# the header, before any pixel is decoded, and kept under Pillow's own warning threshold (89 MP).
MAX_PIXELS = 25_000_000
MAX_SIDE = 1200
THUMBNAIL_SIDE = 160
# 85 keeps a 1200 px portrait near 100–200 kB with no visible loss; the thumbnail a few kB.
QUALITY = 85
CONTENT_TYPE = "image/jpeg"

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
# Frame headers SOF0–SOF15, less DHT (C4), JPG (C8) and DAC (CC), which share the range.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SRGB = ImageCms.createProfile("sRGB")
# What Pillow raises on a damaged file: truncation and decoder errors are OSError, broken PNG
# chunks SyntaxError, oversized PNG text chunks ValueError, short reads EOFError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


@dataclass(frozen=True, slots=True)
class AcceptedPhoto:
    image: bytes
    thumbnail: bytes
    content_type: str
    width: int
    height: int


def accept_photo(data: bytes, *, max_bytes: int = MAX_BYTES) -> AcceptedPhoto:
    if not data:
        raise _refused(msg("文件为空，请重新选择照片"))
    # Before any decoding: the size of the upload is the one cost known without parsing it.
    if len(data) > max_bytes:
        raise _refused(msg("文件过大（{data_count}），不能超过 {max_bytes}",
                           data_count=_megabytes(len(data), up=True), max_bytes=_megabytes(max_bytes)))
    kind = _sniff(data)
    declared = _declared_size(data, kind)
    if declared is None:
        raise _corrupt()
    _check_pixels(*declared)
    try:
        # formats=[kind]: Pillow decodes only the format the magic bytes named, so a file that
        # starts like a PNG is never handed to another of Pillow's decoders.
        with Image.open(io.BytesIO(data), formats=[kind]) as source:
            # The header parsed above and Pillow's may disagree on a crafted file: check again.
            _check_pixels(*source.size)
            # JPEG only (a no-op for PNG): libjpeg decodes at 1/2, 1/4 or 1/8 scale straight
            # away when the photo is much larger than what is kept, saving memory and time.
            source.draft("RGB", (MAX_SIDE, MAX_SIDE))
            source.load()
            picture = _upright(source)
            picture = _on_white(_to_srgb(picture))
    except Image.DecompressionBombError as error:
        raise _refused(msg("图片尺寸过大，不能超过 {value} 万像素；请缩小后再上传", value=MAX_PIXELS // 10_000)) from error
    except _DECODE_ERRORS as error:
        raise _corrupt() from error

    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    image = _jpeg(picture)
    small = picture.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return AcceptedPhoto(
        image=image,
        thumbnail=_jpeg(small),
        content_type=CONTENT_TYPE,
        width=picture.width,
        height=picture.height,
    )


def _sniff(data: bytes) -> str:
    # The content decides, never the file name or the browser's Content-Type: a PNG named .jpg
    # is a PNG, and a text file named .jpg is refused.
    if data.startswith(_JPEG):
        return "JPEG"
    if data.startswith(_PNG):
        return "PNG"
    found = _other_format(data)
    if found == "HEIC":
        # The default format of iPhone cameras: the registrar needs to know how to get a JPEG.
        raise _refused(
            msg("只接受 JPEG 或 PNG 格式，此文件是 HEIC 格式（苹果手机照片）；请在手机“设置—相机—格式”中选择“兼容性最佳”后重拍，或先导出为 JPEG")
        )
    if found:
        raise _refused(msg("只接受 JPEG 或 PNG 格式，此文件是 {found} 格式", found=found))
    raise _refused(msg("只接受 JPEG 或 PNG 格式的图片，此文件不是图片"))


def _other_format(data: bytes) -> str | None:
    # Named only to make the message useful; all of them are refused alike.
    head = data[:16]
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"avif":
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
        return None
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    return None


def _declared_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """Width and height from the header alone, or None when the header is broken."""
    if kind == "PNG":
        # IHDR must be the first chunk: length (4), type (4), width (4), height (4).
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    # JPEG: walk the marker segments (APPn with EXIF, DQT, …) to the frame header.
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _JPEG_STANDALONE:
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if length < 2:
            return None
        if marker in _JPEG_FRAMES:
            # Length (2), sample precision (1), height (2), width (2).
            if at + 9 > len(data):
                return None
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return width, height
        at += 2 + length
    return None


def _check_pixels(width: int, height: int) -> None:
    # Height 0 is legal JPEG (set later by a DNL marker) but no camera writes it; refused as
    # broken rather than decoded with an unknown size.
    if width <= 0 or height <= 0:
        raise _corrupt()
    if width * height > MAX_PIXELS:
        raise _refused(msg("图片尺寸过大（{width}×{height} 像素），不能超过 {value} 万像素；请缩小后再上传",
                           width=width, height=height, value=MAX_PIXELS // 10_000))


def _upright(picture: Image.Image) -> Image.Image:
    # Phones store a portrait as a landscape frame plus an EXIF orientation tag; the tag is
    # about to be stripped, so the rotation is applied to the pixels now.
    try:
        return ImageOps.exif_transpose(picture)
    except _DECODE_ERRORS:
        # An unreadable EXIF block loses the rotation, not the photo: the registrar sees the
        # result and can rotate and upload again.
        return picture


def _to_srgb(picture: Image.Image) -> Image.Image:
    # The colour profile is stripped with the rest of the metadata, so colours are converted to
    # sRGB first: iPhones shoot in Display P3, and a P3 face shown as sRGB looks washed out.
    profile = picture.info.get("icc_profile")
    if not profile or picture.mode not in ("RGB", "RGBA", "CMYK"):
        return picture
    try:
        converted = ImageCms.profileToProfile(
            picture,
            ImageCms.ImageCmsProfile(io.BytesIO(profile)),
            _SRGB,
            outputMode="RGBA" if picture.mode == "RGBA" else "RGB",
        )
    except (ImageCms.PyCMSError, *_DECODE_ERRORS):
        return picture  # a broken profile costs colour accuracy, not the photo
    return converted if converted is not None else picture


def _on_white(picture: Image.Image) -> Image.Image:
    """RGB pixels only: transparency flattened on white, every metadata entry left behind."""
    if picture.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit greyscale PNG: a plain convert("RGB") clips every value above 255 to white.
        picture = picture.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
    # A new image has an empty info dict: the EXIF, XMP, ICC, text chunks and comments of the
    # upload cannot reach the encoder, whatever Pillow's save() would copy over by default.
    clean = Image.new("RGB", picture.size, "white")
    if has_alpha:
        rgba = picture.convert("RGBA")
        clean.paste(rgba, mask=rgba.getchannel("A"))
    else:
        clean.paste(picture.convert("RGB"))
    return clean


def _jpeg(picture: Image.Image) -> bytes:
    # Baseline, not progressive: PDF and print tool chains embed baseline JPEG as it is.
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()


def _megabytes(size: int, *, up: bool = False) -> str:
    # An upload's size is rounded up, so that a file one byte over "2 MB" never reads "2 MB".
    tenths = size * 10 / (1024 * 1024)
    value = (math.ceil(tenths) if up else math.floor(tenths)) / 10
    return f"{value:g} MB"


def _refused(reason: str) -> RuleViolation:
    message = msg("{label}：{reason}", label=msg(LABEL), reason=reason)
    return RuleViolation(message, details=[{"field": FIELD, "message": message}])


def _corrupt() -> RuleViolation:
    return _refused(msg("图片文件已损坏或不完整，无法读取；请重新拍摄或导出后再上传"))
