"""DICOM out and the hospital network: Parametric Maps, SEG and TID 1500 reports written with
highdicom (export), and PACS echo/find/get/send with pynetdicom (pacs)."""
