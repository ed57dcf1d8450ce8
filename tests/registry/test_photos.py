import io
import struct
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from registry import photos
from registry.errors import RuleViolation
from registry.photos import MAX_BYTES, AcceptedPhoto, accept_photo

RED = (220, 30, 30)
BLUE = (30, 30, 220)


def picture(width: int = 300, height: int = 400, mode: str = "RGB") -> Image.Image:
    """A portrait with some structure (a gradient), so that JPEG sizes are not trivially small."""
    gradient = Image.linear_gradient("L").resize((width, height))
    if mode == "L":
        return gradient
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient))
    return image.convert(mode)


def encode(image: Image.Image, format: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **params)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def refusal(data: bytes, **kwargs: int) -> str:
    with pytest.raises(RuleViolation) as refused:
        accept_photo(data, **kwargs)
    error = refused.value
    assert error.status == 422
    assert error.message.startswith("学生照片：")
    assert error.details == [{"field": "photo", "message": error.message}]
    return error.message


def close_to(pixel: object, colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG start declaring width×height, with one row of data: the shape of a bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = zlib.compress(b"\x00" * (width + 1))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", row) + png_chunk(b"IEND", b"")


def test_a_jpeg_is_accepted_and_re_encoded_as_jpeg() -> None:
    accepted = accept_photo(encode(picture(600, 800), "JPEG", quality=95))

    assert isinstance(accepted, AcceptedPhoto)
    assert accepted.content_type == "image/jpeg"
    assert (accepted.width, accepted.height) == (600, 800)
    image = decode(accepted.image)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (600, 800))
    # Baseline, for PDF and print tool chains.
    assert not image.info.get("progressive")


def test_a_png_is_accepted_and_stored_as_jpeg() -> None:
    accepted = accept_photo(encode(picture(), "PNG"))

    assert decode(accepted.image).format == "JPEG"
    assert (accepted.width, accepted.height) == (300, 400)


def test_the_content_decides_not_the_name() -> None:
    # accept_photo takes no name: a PNG uploaded as "photo.jpg" is a PNG, and a text file
    # uploaded as "photo.jpg" is text.
    assert accept_photo(encode(picture(), "PNG")).content_type == "image/jpeg"
    assert "不是图片" in refusal(b"this is photo.jpg, honestly\n")


def test_a_one_inch_id_photo_keeps_its_proportions_and_is_not_cropped() -> None:
    accepted = accept_photo(encode(picture(295, 413), "JPEG"))

    assert (accepted.width, accepted.height) == (295, 413)
    assert decode(accepted.thumbnail).size == (114, 160)


@pytest.mark.parametrize(
    ("size", "kept", "thumbnail"),
    [((4000, 3000), (1200, 900), (160, 120)), ((1500, 3000), (600, 1200), (80, 160))],
)
def test_a_large_photo_is_shrunk_to_1200_px_and_a_160_px_thumbnail(
    size: tuple[int, int], kept: tuple[int, int], thumbnail: tuple[int, int]
) -> None:
    accepted = accept_photo(encode(picture(*size), "JPEG", quality=80))

    assert (accepted.width, accepted.height) == kept
    assert decode(accepted.image).size == kept
    small = decode(accepted.thumbnail)
    assert (small.format, small.size) == ("JPEG", thumbnail)
    # Printed on rosters, loaded over slow links: kept small.
    assert len(accepted.image) < 300_000
    assert len(accepted.thumbnail) < 20_000


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_flattened_on_white(mode: str) -> None:
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    image.paste((*RED, 255), (50, 50, 150, 150))
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":
        image = image.convert("P")  # keeps transparency as a palette entry
    data = encode(image, "PNG")

    result = decode(accept_photo(data).image)

    assert close_to(result.getpixel((5, 5)), (255, 255, 255))
    centre = result.getpixel((100, 100))
    assert centre != result.getpixel((5, 5))
    if mode != "LA":
        assert close_to(centre, RED, tolerance=20)


def exif_with_location(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "LeakyPhone"
    exif[ExifTags.Base.DateTime] = "2025:09:01 08:00:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (26.0, 35.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (106.0, 42.0, 30.0)
    return exif


def landscape_red_left_blue_right() -> Image.Image:
    image = Image.new("RGB", (400, 200), BLUE)
    image.paste(RED, (0, 0, 200, 200))
    return image


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="26,35.2N"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


@pytest.mark.parametrize("format", ["JPEG", "PNG"])
def test_exif_orientation_is_applied_and_all_metadata_is_stripped(format: str) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    extra: dict[str, object]
    if format == "JPEG":
        extra = {"comment": b"taken at the village school", "xmp": XMP}
    else:
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "taken at the village school")
        text.add_itxt("XML:com.adobe.xmp", XMP.decode())
        extra = {"pnginfo": text}
    data = encode(landscape_red_left_blue_right(), format, exif=exif_with_location(6), icc_profile=icc, **extra)
    uploaded = decode(data)
    assert uploaded.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test photo does carry a location
    assert uploaded.info.get("icc_profile") and uploaded.info.get("xmp")

    accepted = accept_photo(data)

    # Orientation 6: shown rotated 90° clockwise, so the red left half is on top.
    assert (accepted.width, accepted.height) == (200, 400)
    for stored in (accepted.image, accepted.thumbnail):
        result = decode(stored)
        assert len(result.getexif()) == 0
        assert not result.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert not {"exif", "icc_profile", "comment", "Comment", "xmp", "XML:com.adobe.xmp"} & set(result.info)
        for trace in (b"Exif", b"LeakyPhone", b"village", b"GPS", b"xmpmeta"):
            assert trace not in stored
    result = decode(accepted.image)
    assert close_to(result.getpixel((100, 50)), RED, tolerance=20)
    assert close_to(result.getpixel((100, 350)), BLUE, tolerance=20)


def test_a_cmyk_jpeg_is_stored_as_rgb() -> None:
    accepted = accept_photo(encode(Image.new("CMYK", (120, 160), (0, 255, 255, 0)), "JPEG"))

    result = decode(accepted.image)
    assert result.mode == "RGB"
    assert close_to(result.getpixel((60, 80)), (255, 0, 0), tolerance=30)


def test_a_16_bit_greyscale_png_keeps_its_greys() -> None:
    data = encode(Image.new("I;16", (100, 100), 32768), "PNG")

    result = decode(accept_photo(data).image)

    assert close_to(result.getpixel((50, 50)), (128, 128, 128), tolerance=3)


def test_an_oversize_file_is_refused_before_it_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("an oversize file must not reach the decoder")

    monkeypatch.setattr(Image, "open", never)

    message = refusal(b"\xff\xd8\xff" + b"\x00" * MAX_BYTES)
    assert message == "学生照片：文件过大（2.1 MB），不能超过 2 MB"
    assert "文件过大" in refusal(encode(picture(), "PNG"), max_bytes=100)


def test_the_size_limit_is_inclusive() -> None:
    data = encode(picture(), "JPEG")
    assert accept_photo(data, max_bytes=len(data)).width == 300


@pytest.mark.parametrize(
    "data",
    [png_header_only(20_000, 20_000), png_header_only(6_000, 5_000)],
    ids=["20000x20000", "30-megapixels"],
)
def test_a_decompression_bomb_png_is_refused_before_decoding(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("refused on the header, before Pillow")

    monkeypatch.setattr(Image, "open", never)

    assert "图片尺寸过大" in refusal(data)
    assert "万像素" in refusal(data)


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    at = data.index(b"\xff\xc0")  # Pillow writes baseline SOF0
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def test_a_jpeg_declaring_a_huge_frame_is_refused() -> None:
    data = with_jpeg_size(encode(picture(16, 16), "JPEG"), 20_000, 20_000)

    assert refusal(data) == "学生照片：图片尺寸过大（20000×20000 像素），不能超过 2500 万像素；请缩小后再上传"


@pytest.mark.parametrize(("width", "height"), [(20_000, 20_000), (6_000, 5_000)])
def test_pillow_s_own_size_is_checked_again_when_the_header_parse_was_fooled(
    monkeypatch: pytest.MonkeyPatch, width: int, height: int
) -> None:
    monkeypatch.setattr(photos, "_declared_size", lambda data, kind: (10, 10))

    assert "图片尺寸过大" in refusal(png_header_only(width, height))


def test_a_truncated_jpeg_is_refused() -> None:
    noisy = Image.effect_noise((400, 400), 64).convert("RGB")
    data = encode(noisy, "JPEG")

    message = refusal(data[: len(data) // 2])

    assert message == "学生照片：图片文件已损坏或不完整，无法读取；请重新拍摄或导出后再上传"


@pytest.mark.parametrize(
    "data",
    [
        encode(picture(), "JPEG")[:40],  # cut inside the headers
        encode(picture(), "PNG")[:-200],  # cut inside the pixel data
        encode(picture(), "PNG")[:20],  # cut inside IHDR
        b"\xff\xd8\xff" + b"\x00" * 500,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 500,
        png_header_only(0, 10),
        with_jpeg_size(encode(picture(16, 16), "JPEG"), 16, 0),
    ],
    ids=["jpeg-headers", "png-pixels", "png-ihdr", "jpeg-garbage", "png-garbage", "png-zero-width", "jpeg-zero-height"],
)
def test_a_corrupt_image_is_refused(data: bytes) -> None:
    assert "已损坏或不完整" in refusal(data)


def webp() -> bytes:
    return encode(picture(), "WEBP")


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (encode(picture(), "GIF"), "GIF 格式"),
        (webp(), "WebP 格式"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100, "HEIC 格式（苹果手机照片）"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + b"\x00" * 100, "AVIF 格式"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF 格式"),
        (encode(picture(), "BMP"), "BMP 格式"),
        (encode(picture(), "TIFF"), "TIFF 格式"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "不是图片"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "不是图片"),
        ("学生名单，不是照片".encode(), "不是图片"),
    ],
    ids=["gif", "webp", "heic", "avif", "pdf", "bmp", "tiff", "xml", "svg", "text"],
)
def test_anything_but_jpeg_or_png_is_refused_with_what_it_is(data: bytes, named: str) -> None:
    message = refusal(data)

    assert "只接受 JPEG 或 PNG" in message
    assert named in message


def test_an_empty_file_is_refused() -> None:
    assert refusal(b"") == "学生照片：文件为空，请重新选择照片"
