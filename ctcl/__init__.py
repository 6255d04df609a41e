"""CTCL knowledge as pure functions, with no I/O: ISCL/EORTC TNMB categories (`tnmb`), the Olsen
2007/2011 stage group and the one stage order (`olsen`), the blood (B) category (`blood`), CLIPI
(`clipi`) and lines of therapy (`lines`). Converters, derivation, validation and survival all
take their staging rules from here; the rules are documented in ctcl/README.md."""
