"""Derive: what the CDM holds beyond the converted resources, computed in the database after a
load: observation periods, condition and drug eras, capped drug ends (`eras`), and the oncology
rows (staging links, stage groups, B categories, CLIPI, episodes: `oncology`)."""
