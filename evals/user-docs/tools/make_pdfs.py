"""Regenerate the two PDF documents of the invented evaluation corpus.

All text below is invented for this project (see ../README.md). The script needs
fpdf2, which is NOT a project dependency; install it in a throwaway venv:

    python3.11 -m venv /tmp/pdfvenv && /tmp/pdfvenv/bin/pip install fpdf2
    /tmp/pdfvenv/bin/python evals/user-docs/tools/make_pdfs.py

It writes docs/cbd_policy_report_14.pdf (a two-page policy report with a running
header and footer, no /Title metadata) and docs/statement_0617.pdf (a one-page
ministry statement, with /Title metadata set). Only the core Helvetica font is
used, so the text must stay within Latin-1 (plain quotes and hyphens).
"""

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

DOCS = Path(__file__).resolve().parent.parent / "docs"

# ---------------------------------------------------------------- policy report

REPORT_HEADER = "Centre for Basin Diplomacy  |  Policy Report No. 14  |  April 2025"
REPORT_FOOTER = "Centre for Basin Diplomacy, Geneva  -  www.basindiplomacy.example"

REPORT_TITLE = "Sharing the Sarren: The Draft Treaty and the Road to Signature"
REPORT_FRONT = [
    "Policy Report No. 14",
    "By Dr. Leontine Farrow, Senior Research Fellow",
    "Published 7 April 2025",
]

REPORT_SECTIONS = [
    ("Summary", [
        "After four years of negotiations, one suspension and a change of negotiators on both sides, "
        "Mireth and Karsenia are close to agreeing a Sarren Waters Treaty. The draft text seen by the "
        "Centre settles the question that kept the talks apart for so long: how much water Karsenia must "
        "let pass into the lower river in the dry months. The answer in the draft is a minimum flow of "
        "340 cubic metres per second at the Kessel Bend gauge from 1 July to 31 October, roughly halfway "
        "between Mireth's demand of 420 and Karsenia's offer of 280.",
        "The draft is better than many observers expected. It is also incomplete. This report summarises "
        "what the text says, what it leaves to later decisions, and what the three governments should do "
        "before and after signature.",
    ]),
    ("1. How the talks got here", [
        "Formal talks opened in Geneva in March 2021. An interim protocol initialled in September 2021 "
        "created the Joint Sarren River Commission, with its secretariat in Zelen, but left the division of "
        "the water to the treaty negotiations.",
        "The talks broke down in May 2023, when Karsenia began filling the reservoir of the Tolvek Dam "
        "during a dry spring and Mireth suspended its participation. The drought that followed was the "
        "worst in four decades in the lower valley. Negotiations resumed in Geneva in March 2024 after "
        "mediation by Dravonia's Foreign Minister, Ilir Tamasz, with new heads of delegation on the "
        "Mireth side (Ambassador Petra Lund-Okafor) and, from September 2024, on the Karsenian side "
        "(Minister of Water Resources Greta Olvasz).",
        "The gap on the minimum flow narrowed only in the last two rounds, held in Zelen in February and "
        "March 2025. In the Centre's assessment, three things made the compromise possible: live access "
        "for the commission to the Tolvek outflow data, the arrival of a Karsenian minister with a "
        "background in the power sector, and Dravonia's decision to become a party in its own right.",
    ]),
    ("2. What the draft says", [
        "Minimum flow. Karsenia guarantees 340 cubic metres per second at Kessel Bend from 1 July to "
        "31 October. In a year that the commission declares a drought year, the parties must consult "
        "within 14 days on a temporary schedule, but the flow may not fall below 300 cubic metres per "
        "second.",
        "The commission. The Joint Sarren River Commission becomes a permanent treaty body. Dravonia "
        "moves from observer to full member, and the chair will rotate among all three parties. The "
        "commission currently operates 19 monitoring stations, none of them on the Dravonian stretch; "
        "the draft requires the network to be extended there.",
        "Disputes. Technical disputes go to a panel of three independent experts, whose findings are "
        "binding on the parties. Other disputes are left to negotiation between the governments.",
        "Review. The minimum flow is reviewed every five years on the basis of the commission's data.",
        "Money. The costs of the commission are to be shared equally among the parties. The draft does "
        "not fix a budget; that is left to the first meeting of the parties after entry into force.",
        "Entry into force. The treaty requires ratification by all three parties and enters into force "
        "30 days after the last instrument of ratification is deposited.",
    ]),
    ("3. Competing readings", [
        "In Port Anselm the government presents the figure of 340 as a historic guarantee, the first "
        "number ever written into law for the river. Its critics, led by the opposition Delta Alliance, "
        "argue that a minimum written at 340 will become the normal flow in practice, and that the delta "
        "needed more. In Halvik the debate runs the other way: opposition deputies say every cubic metre "
        "released in summer is electricity that Karsenia cannot sell.",
        "The Centre's view is that the figure matters less than the machinery around it. A minimum flow "
        "that is measured in public, reviewed on a fixed cycle and backed by a binding technical panel is "
        "worth more than a higher number that no one can check.",
    ]),
    ("4. Recommendations", [
        "Publish the annex that defines a drought year before signature, so that parliaments ratify a "
        "text they can read in full.",
        "Fund the Dravonian stations now rather than after entry into force, so that the first review is "
        "based on data from the whole river.",
        "Write the commission's salinity warnings for the delta into the treaty's operating rules, since "
        "salt, not flow, is what farmers in Mireth actually experience.",
        "Agree the commission's budget at the same time as the treaty is ratified, to avoid a permanent "
        "body with a provisional bank account.",
    ]),
]


class Report(FPDF):
    def header(self):
        self.set_font("Helvetica", "I", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 6, REPORT_HEADER, align="C", new_x="LMARGIN", new_y="NEXT")
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(4)
        self.set_text_color(0, 0, 0)

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, REPORT_FOOTER, align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def make_report(path: Path) -> None:
    pdf = Report(format="A4")
    # fixed creation date (the publication date), so rebuilds are byte-stable
    pdf.set_creation_date(datetime(2025, 4, 7, 9, 0, tzinfo=timezone.utc))
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(auto=True, margin=22)
    pdf.set_margins(22, 18, 22)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 9, REPORT_TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 10)
    for line in REPORT_FRONT:
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for heading, paras in REPORT_SECTIONS:
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10.5)
        for para in paras:
            pdf.multi_cell(0, 5.4, para, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.5)
        pdf.ln(2)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 5, "The Centre for Basin Diplomacy is an independent research institute. The views "
                   "expressed in this report are those of the author.", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


# ---------------------------------------------------------------- ministry statement

STATEMENT_TITLE = "Statement on the Signing of the Sarren Waters Treaty"
STATEMENT_LINES = [
    "MINISTRY OF FOREIGN AFFAIRS OF THE REPUBLIC OF MIRETH",
    "Press and Information Department",
]
STATEMENT_REF = "No. 214/25        Port Anselm, 17 June 2025"
STATEMENT_PARAS = [
    "Today in Zelen, the Minister of Foreign Affairs of the Republic of Mireth, Tobias Renquist, signed "
    "the Sarren Waters Treaty together with the Minister of Water Resources of the Republic of Karsenia, "
    "Greta Olvasz, and the Minister of Foreign Affairs of the Federal Republic of Dravonia, Ilir Tamasz.",
    "The Treaty guarantees a minimum flow of 340 cubic metres per second at the Kessel Bend gauge from "
    "1 July to 31 October of each year. It makes the Joint Sarren River Commission a permanent body, "
    "admits Dravonia as a full member, and establishes a panel of three independent experts to settle "
    "technical disputes.",
    "Speaking after the ceremony, Minister Renquist said: \"This treaty is the first legal guarantee of "
    "water that the Sarren Delta has ever had. For fifty years our farmers have depended on the goodwill "
    "of the weather and of our neighbours. From today they can depend on the law.\"",
    "The Minister thanked the Government of Dravonia and Foreign Minister Tamasz personally for the "
    "mediation that made the resumption of the negotiations possible in 2024, and paid tribute to "
    "Mireth's negotiators, Ambassador Petra Lund-Okafor and her predecessor, Ambassador Selin Averoff.",
    "The Government will submit the Treaty to the National Assembly for ratification before the end of "
    "the year. The Treaty will enter into force 30 days after all three parties have deposited their "
    "instruments of ratification.",
    "The Ministry of Foreign Affairs will publish the full text of the Treaty and its annexes on its "
    "website.",
]
STATEMENT_END = "Press and Information Department, Ministry of Foreign Affairs, 1 Republic Square, Port Anselm"


def make_statement(path: Path) -> None:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(2025, 6, 17, 16, 0, tzinfo=timezone.utc))
    pdf.set_title(STATEMENT_TITLE)
    pdf.set_author("Ministry of Foreign Affairs of the Republic of Mireth")
    pdf.set_margins(25, 22, 25)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 11)
    for line in STATEMENT_LINES:
        pdf.cell(0, 6, line, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, STATEMENT_REF, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 8, STATEMENT_TITLE, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 11)
    for para in STATEMENT_PARAS:
        pdf.multi_cell(0, 6, para, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.ln(4)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 5, STATEMENT_END, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


if __name__ == "__main__":
    make_report(DOCS / "cbd_policy_report_14.pdf")
    make_statement(DOCS / "statement_0617.pdf")
    print("wrote", DOCS / "cbd_policy_report_14.pdf", "and", DOCS / "statement_0617.pdf")
