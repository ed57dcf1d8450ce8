"""Parsing of uploaded BPMN without letting the document reach the network, the disk or our memory.

lxml expands internal entities by default, so a billion-laughs file would be expanded before Spiff
ever saw it. We parse once here with entity resolution, DTD loading and network access off, refuse
any document that declares a DOCTYPE at all (a BPMN file has no use for one), and hand the tree to
Spiff, which then never parses the raw bytes itself.
"""

from __future__ import annotations

from lxml import etree

# The largest file in the OMG interchange suite is 240 KB; a process bigger than this is a mistake or an attack.
MAX_BPMN_BYTES = 5 * 1024 * 1024


_DTD_REFUSED = "文件含有 DOCTYPE 或实体声明，已拒绝 / DOCTYPE and entity declarations are refused"


class XmlRefused(ValueError):
    pass


def parse_bpmn_xml(data: bytes) -> etree._Element:
    if not isinstance(data, (bytes, bytearray)):
        raise XmlRefused(f"需要字节串，收到 {type(data).__name__} / expected bytes")
    if not bytes(data).strip():
        raise XmlRefused("文件为空 / the file is empty")
    if len(data) > MAX_BPMN_BYTES:
        raise XmlRefused(f"文件超过 {MAX_BPMN_BYTES // (1024 * 1024)} MB / the file is too large")
    # A fresh parser per call: lxml parser objects must not be shared between threads.
    parser = etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
    )
    try:
        root = etree.fromstring(bytes(data), parser)
    except etree.XMLSyntaxError as exc:
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise XmlRefused(_DTD_REFUSED) from None
        raise XmlRefused(f"不是格式正确的 XML / not well-formed XML: {exc}") from None
    if root is None:
        raise XmlRefused("不是格式正确的 XML / not well-formed XML")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlRefused(_DTD_REFUSED)
    return root
