"""The validation report a validator signs: bilingual, as DOCX (python-docx) or PDF (headless Chromium
printing the HTML form). Both are rendered from one ``report_data`` dictionary read from the registry."""

from modelreg.operations.report.data import report_data
from modelreg.operations.report.render import render_html, write_docx, write_pdf, write_report

__all__ = ["render_html", "report_data", "write_docx", "write_pdf", "write_report"]
