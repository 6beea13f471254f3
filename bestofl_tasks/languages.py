"""The one per-language table: names, prompt phrases, answer phrases, number conventions.

Everything language-specific in bestofl (task prompts, model prompts, the verifier's text, the
answer extractor and the final answer line returned to lm-eval) reads this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    #: Question prefix as in the MGSM exemplars ("Question:", "Frage:", ...).
    question_prefix: str
    #: Step-by-step answer cue as in the MGSM exemplars.
    cot_cue: str
    #: Final line the model is asked to end with; ``{answer}`` is replaced by ASCII digits.
    #: Chosen so that lm-eval's own ``mgsm_native_cot_{code}`` strict-match regex parses it.
    final_line: str
    #: Phrases that introduce a final answer, most specific first (used by the extractor).
    answer_phrases: tuple[str, ...]
    #: Zero-shot chain-of-thought instruction, written in the language itself.
    instruction: str
    #: Decimal separator in running text ("." or ",").
    decimal_sep: str
    #: Unicode decimal digits of the language's native script, if any (ASCII is always accepted).
    native_digits: str = ""
    #: True: the prompt and phrases were written for bestofl and no native speaker has checked them yet
    #: (docs/TASKS.md lists these languages).
    prompt_unchecked: bool = False


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in [
        Language(
            code="en",
            name="English",
            question_prefix="Question:",
            cot_cue="Step-by-Step Answer:",
            final_line="The answer is {answer}.",
            answer_phrases=(
                "The final answer is", "the final answer is", "The answer is", "the answer is", "Final answer:",
                "Answer:",
            ),
            instruction=(
                "Solve the following math problem step by step. "
                'At the end, write the final answer on its own line as "The answer is N.", '
                "where N is a number."
            ),
            decimal_sep=".",
        ),
        Language(
            code="es",
            name="Spanish",
            question_prefix="Pregunta:",
            cot_cue="Respuesta paso a paso:",
            final_line="La respuesta es {answer}.",
            answer_phrases=(
                "La respuesta final es", "la respuesta final es", "La respuesta es", "la respuesta es",
                "Respuesta final:", "Respuesta:",
            ),
            instruction=(
                "Resuelve el siguiente problema de matemáticas paso a paso. "
                'Al final, escribe la respuesta final en una línea aparte como "La respuesta es N.", '
                "donde N es un número."
            ),
            decimal_sep=",",
        ),
        Language(
            code="fr",
            name="French",
            question_prefix="Question :",
            cot_cue="Réponse étape par étape :",
            final_line="La réponse est {answer}.",
            answer_phrases=(
                "La réponse finale est", "la réponse finale est", "La réponse est", "la réponse est",
                "Réponse finale :", "Réponse :", "Réponse:",
            ),
            instruction=(
                "Résous le problème de mathématiques suivant étape par étape. "
                "À la fin, écris la réponse finale sur une ligne à part sous la forme "
                "« La réponse est N. », où N est un nombre."
            ),
            decimal_sep=",",
        ),
        Language(
            code="de",
            name="German",
            question_prefix="Frage:",
            cot_cue="Schritt-für-Schritt-Antwort:",
            final_line="Die Antwort lautet {answer}.",
            answer_phrases=(
                "Die endgültige Antwort lautet", "die endgültige Antwort lautet", "Die endgültige Antwort ist",
                "die endgültige Antwort ist",
                "Die Antwort lautet", "die Antwort lautet", "Die Antwort ist", "die Antwort ist",
                "Endgültige Antwort:", "Antwort:",
            ),
            instruction=(
                "Löse die folgende Mathematikaufgabe Schritt für Schritt. "
                "Schreibe am Ende die endgültige Antwort in eine eigene Zeile in der Form "
                "„Die Antwort lautet N.“, wobei N eine Zahl ist."
            ),
            decimal_sep=",",
        ),
        Language(
            code="ru",
            name="Russian",
            question_prefix="Задача:",
            cot_cue="Пошаговое решение:",
            final_line="Ответ — {answer}.",
            answer_phrases=("Ответ —", "Ответ -", "Ответ:", "ответ —", "ответ:", "Ответ"),
            instruction=(
                "Реши следующую математическую задачу шаг за шагом. "
                "В конце напиши окончательный ответ отдельной строкой в виде «Ответ — N.», "
                "где N — число."
            ),
            decimal_sep=",",
        ),
        Language(
            code="zh",
            name="Chinese",
            question_prefix="问题：",
            cot_cue="逐步解答：",
            final_line="答案是 {answer}。",
            answer_phrases=("答案是", "最终答案：", "最终答案:", "答案：", "答案:"),
            instruction="请一步一步地解答下面的数学题。最后，单独一行写出最终答案，格式为“答案是 N。”，其中 N 是一个数字。",
            decimal_sep=".",
        ),
        Language(
            code="ja",
            name="Japanese",
            question_prefix="問題：",
            cot_cue="ステップごとの答え：",
            final_line="答えは{answer}です。",
            answer_phrases=("答えは", "最終的な答え：", "最終的な答え:", "答え：", "答え:"),
            instruction="次の数学の問題を段階的に解いてください。最後に、最終的な答えを「答えはNです。」という形で別の行に書いてください。Nは数字です。",
            decimal_sep=".",
        ),
        Language(
            code="th",
            name="Thai",
            question_prefix="โจทย์:",
            cot_cue="คำตอบทีละขั้นตอน:",
            final_line="คำตอบคือ {answer}",
            answer_phrases=("คำตอบคือ", "คำตอบสุดท้าย:", "คำตอบ:"),
            instruction=(
                "จงแก้โจทย์คณิตศาสตร์ต่อไปนี้ทีละขั้นตอน "
                'ในตอนท้าย ให้เขียนคำตอบสุดท้ายแยกไว้หนึ่งบรรทัดในรูปแบบ "คำตอบคือ N" โดยที่ N เป็นตัวเลข'
            ),
            decimal_sep=".",
            native_digits="๐๑๒๓๔๕๖๗๘๙",
        ),
        Language(
            code="sw",
            name="Swahili",
            question_prefix="Swali:",
            cot_cue="Jibu la Hatua kwa Hatua:",
            final_line="Jibu ni {answer}.",
            answer_phrases=("Jibu la mwisho ni", "jibu la mwisho ni", "Jibu ni", "jibu ni", "Jibu la mwisho:", "Jibu:"),
            instruction=(
                "Tatua swali lifuatalo la hesabu hatua kwa hatua. "
                'Mwishoni, andika jibu la mwisho kwenye mstari wake peke yake kama "Jibu ni N.", '
                "ambapo N ni namba."
            ),
            decimal_sep=".",
        ),
        Language(
            code="bn",
            name="Bengali",
            question_prefix="প্রশ্ন:",
            cot_cue="ধাপে ধাপে উত্তর:",
            final_line="উত্তর হল {answer}।",
            answer_phrases=("উত্তর হল", "উত্তর হলো", "চূড়ান্ত উত্তর:", "উত্তর:", "The answer is"),
            instruction=(
                "নিচের গণিত সমস্যাটি ধাপে ধাপে সমাধান করো। "
                "শেষে, চূড়ান্ত উত্তরটি আলাদা একটি লাইনে \"উত্তর হল N।\" আকারে লেখো, যেখানে N একটি সংখ্যা।"
            ),
            decimal_sep=".",
            native_digits="০১২৩৪৫৬৭৮৯",
        ),
        Language(
            code="te",
            name="Telugu",
            question_prefix="ప్రశ్న:",
            cot_cue="దశలవారీగా సమాధానం:",
            final_line="సమాధానం {answer}.",
            answer_phrases=("సమాధానం", "తుది సమాధానం:"),
            instruction=(
                "కింది గణిత సమస్యను దశలవారీగా పరిష్కరించండి. "
                "చివరగా, తుది సమాధానాన్ని ప్రత్యేక పంక్తిలో \"సమాధానం N.\" రూపంలో రాయండి, ఇక్కడ N ఒక సంఖ్య."
            ),
            decimal_sep=".",
            native_digits="౦౧౨౩౪౫౬౭౮౯",
        ),
        Language(
            code="it",
            name="Italian",
            question_prefix="Domanda:",
            cot_cue="Risposta passo per passo:",
            final_line="La risposta è {answer}.",
            answer_phrases=(
                "La risposta finale è", "la risposta finale è", "La risposta è", "la risposta è",
                "Risposta finale:", "Risposta:",
            ),
            instruction=(
                "Risolvi il seguente problema di matematica passo per passo. "
                'Alla fine, scrivi la risposta finale su una riga a parte nella forma "La risposta è N.", '
                "dove N è un numero."
            ),
            decimal_sep=",",
        ),
        # ---- Written for bestofl, unchecked by native speakers (prompt_unchecked): the European languages of
        # openGPT-X/gsm8kx, then the AfriMGSM languages, whose final lines use lm-eval's afrimgsm answer
        # phrases. Vai has no prompt in Vai script: it uses the English one.
        Language(
            code="bg",
            name="Bulgarian",
            question_prefix="Въпрос:",
            cot_cue="Отговор стъпка по стъпка:",
            final_line="Отговорът е {answer}.",
            answer_phrases=(
                "Окончателният отговор е", "окончателният отговор е", "Отговорът е", "отговорът е", "Окончателен отговор:", "Отговор:",
            ),
            instruction=(
                "Реши следната математическа задача стъпка по стъпка. Накрая напиши окончателния отговор на "
                "отделен ред във вида „Отговорът е N.“, където N е число."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="da",
            name="Danish",
            question_prefix="Spørgsmål:",
            cot_cue="Trin-for-trin-svar:",
            final_line="Svaret er {answer}.",
            answer_phrases=(
                "Det endelige svar er", "det endelige svar er", "Svaret er", "svaret er", "Endeligt svar:", "Svar:",
            ),
            instruction=(
                "Løs følgende matematikopgave trin for trin. Skriv til sidst det endelige svar på en linje "
                'for sig selv som "Svaret er N.", hvor N er et tal.'
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="et",
            name="Estonian",
            question_prefix="Küsimus:",
            cot_cue="Samm-sammuline vastus:",
            final_line="Vastus on {answer}.",
            answer_phrases=(
                "Lõplik vastus on", "lõplik vastus on", "Vastus on", "vastus on", "Lõplik vastus:", "Vastus:",
            ),
            instruction=(
                "Lahenda järgmine matemaatikaülesanne samm-sammult. Lõpus kirjuta lõplik vastus eraldi "
                "reale kujul „Vastus on N.“, kus N on arv."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="fi",
            name="Finnish",
            question_prefix="Kysymys:",
            cot_cue="Vastaus vaihe vaiheelta:",
            final_line="Vastaus on {answer}.",
            answer_phrases=(
                "Lopullinen vastaus on", "lopullinen vastaus on", "Vastaus on", "vastaus on", "Lopullinen vastaus:", "Vastaus:",
            ),
            instruction=(
                "Ratkaise seuraava matematiikan tehtävä vaihe vaiheelta. Kirjoita lopuksi lopullinen "
                "vastaus omalle rivilleen muodossa ”Vastaus on N.”, missä N on luku."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="el",
            name="Greek",
            question_prefix="Ερώτηση:",
            cot_cue="Απάντηση βήμα προς βήμα:",
            final_line="Η απάντηση είναι {answer}.",
            answer_phrases=(
                "Η τελική απάντηση είναι", "η τελική απάντηση είναι", "Η απάντηση είναι", "η απάντηση είναι", "Τελική απάντηση:", "Απάντηση:",
            ),
            instruction=(
                "Λύσε το παρακάτω μαθηματικό πρόβλημα βήμα προς βήμα. Στο τέλος, γράψε την τελική απάντηση "
                "σε ξεχωριστή γραμμή με τη μορφή «Η απάντηση είναι N.», όπου N είναι ένας αριθμός."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="lv",
            name="Latvian",
            question_prefix="Jautājums:",
            cot_cue="Atbilde soli pa solim:",
            final_line="Atbilde ir {answer}.",
            answer_phrases=(
                "Galīgā atbilde ir", "galīgā atbilde ir", "Atbilde ir", "atbilde ir", "Galīgā atbilde:", "Atbilde:",
            ),
            instruction=(
                "Atrisini šo matemātikas uzdevumu soli pa solim. Beigās uzraksti galīgo atbildi atsevišķā "
                "rindā formā „Atbilde ir N.”, kur N ir skaitlis."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="lt",
            name="Lithuanian",
            question_prefix="Klausimas:",
            cot_cue="Atsakymas žingsnis po žingsnio:",
            final_line="Atsakymas yra {answer}.",
            answer_phrases=(
                "Galutinis atsakymas yra", "galutinis atsakymas yra", "Atsakymas yra", "atsakymas yra", "Galutinis atsakymas:", "Atsakymas:",
            ),
            instruction=(
                "Išspręsk šį matematikos uždavinį žingsnis po žingsnio. Pabaigoje atskiroje eilutėje "
                "parašyk galutinį atsakymą forma „Atsakymas yra N.“, kur N yra skaičius."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="nl",
            name="Dutch",
            question_prefix="Vraag:",
            cot_cue="Stapsgewijs antwoord:",
            final_line="Het antwoord is {answer}.",
            answer_phrases=(
                "Het uiteindelijke antwoord is", "het uiteindelijke antwoord is", "Het antwoord is", "het antwoord is", "Uiteindelijk antwoord:", "Antwoord:",
            ),
            instruction=(
                "Los het volgende wiskundeprobleem stap voor stap op. Schrijf aan het eind het "
                'uiteindelijke antwoord op een aparte regel als "Het antwoord is N.", waarbij N een getal '
                "is."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="pl",
            name="Polish",
            question_prefix="Pytanie:",
            cot_cue="Odpowiedź krok po kroku:",
            final_line="Odpowiedź to {answer}.",
            answer_phrases=(
                "Ostateczna odpowiedź to", "ostateczna odpowiedź to", "Odpowiedź to", "odpowiedź to", "Ostateczna odpowiedź:", "Odpowiedź:",
            ),
            instruction=(
                "Rozwiąż poniższe zadanie matematyczne krok po kroku. Na końcu zapisz ostateczną odpowiedź "
                "w osobnym wierszu w postaci „Odpowiedź to N.”, gdzie N jest liczbą."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="pt",
            name="Portuguese",
            question_prefix="Pergunta:",
            cot_cue="Resposta passo a passo:",
            final_line="A resposta é {answer}.",
            answer_phrases=(
                "A resposta final é", "a resposta final é", "A resposta é", "a resposta é", "Resposta final:", "Resposta:",
            ),
            instruction=(
                "Resolve o seguinte problema de matemática passo a passo. No final, escreve a resposta "
                "final numa linha separada na forma «A resposta é N.», em que N é um número."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="ro",
            name="Romanian",
            question_prefix="Întrebare:",
            cot_cue="Răspuns pas cu pas:",
            final_line="Răspunsul este {answer}.",
            answer_phrases=(
                "Răspunsul final este", "răspunsul final este", "Răspunsul este", "răspunsul este", "Răspuns final:", "Răspuns:",
            ),
            instruction=(
                "Rezolvă următoarea problemă de matematică pas cu pas. La final, scrie răspunsul final pe "
                "un rând separat sub forma „Răspunsul este N.”, unde N este un număr."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="sv",
            name="Swedish",
            question_prefix="Fråga:",
            cot_cue="Steg-för-steg-svar:",
            final_line="Svaret är {answer}.",
            answer_phrases=(
                "Det slutliga svaret är", "det slutliga svaret är", "Svaret är", "svaret är", "Slutligt svar:", "Svar:",
            ),
            instruction=(
                "Lös följande matematikuppgift steg för steg. Skriv till sist det slutliga svaret på en "
                "egen rad i formen ”Svaret är N.”, där N är ett tal."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="sk",
            name="Slovak",
            question_prefix="Otázka:",
            cot_cue="Odpoveď krok za krokom:",
            final_line="Odpoveď je {answer}.",
            answer_phrases=(
                "Konečná odpoveď je", "konečná odpoveď je", "Odpoveď je", "odpoveď je", "Konečná odpoveď:", "Odpoveď:",
            ),
            instruction=(
                "Vyrieš nasledujúcu matematickú úlohu krok za krokom. Na konci napíš konečnú odpoveď na "
                "samostatný riadok v tvare „Odpoveď je N.“, kde N je číslo."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="sl",
            name="Slovenian",
            question_prefix="Vprašanje:",
            cot_cue="Odgovor po korakih:",
            final_line="Odgovor je {answer}.",
            answer_phrases=(
                "Končni odgovor je", "končni odgovor je", "Odgovor je", "odgovor je", "Končni odgovor:", "Odgovor:",
            ),
            instruction=(
                "Reši naslednjo matematično nalogo korak za korakom. Na koncu zapiši končni odgovor v svojo "
                "vrstico v obliki »Odgovor je N.«, kjer je N število."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="cs",
            name="Czech",
            question_prefix="Otázka:",
            cot_cue="Odpověď krok za krokem:",
            final_line="Odpověď je {answer}.",
            answer_phrases=(
                "Konečná odpověď je", "konečná odpověď je", "Odpověď je", "odpověď je", "Konečná odpověď:", "Odpověď:",
            ),
            instruction=(
                "Vyřeš následující matematickou úlohu krok za krokem. Na konci napiš konečnou odpověď na "
                "samostatný řádek ve tvaru „Odpověď je N.“, kde N je číslo."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="hu",
            name="Hungarian",
            question_prefix="Kérdés:",
            cot_cue="Válasz lépésről lépésre:",
            final_line="A válasz {answer}.",
            answer_phrases=(
                "A végső válasz", "a végső válasz", "A válasz", "a válasz", "Végső válasz:", "Válasz:",
            ),
            instruction=(
                "Oldd meg a következő matematikai feladatot lépésről lépésre. A végén írd a végső választ "
                "külön sorba „A válasz N.” formában, ahol N egy szám."
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="am",
            name="Amharic",
            question_prefix="ጥያቄ:",
            cot_cue="በቅደም ተከተል መልስ:",
            final_line="መልሱ {answer} ነው።",
            answer_phrases=(
                "የመጨረሻው መልስ", "መልሱ", "መልስ:",
            ),
            instruction=(
                'የሚከተለውን የሂሳብ ጥያቄ በደረጃ ፍታ። በመጨረሻ፣ የመጨረሻውን መልስ በተለየ መስመር ላይ "መልሱ N ነው።" በሚለው ቅርጸት ጻፍ፤ N ቁጥር '
                "ነው።"
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="ee",
            name="Ewe",
            question_prefix="Biabia:",
            cot_cue="Ŋuɖoɖo le afɔɖeɖe me:",
            final_line="ŋuɖoɖoae nye {answer}.",
            answer_phrases=(
                "ŋuɖoɖoae nye", "Ŋuɖoɖoae nye", "Ŋuɖoɖoa nye", "ŋuɖoɖoa nye", "Ŋuɖoɖo:",
            ),
            instruction=(
                "Wɔ akɔntabubu biabia sia ɖe afɔɖeɖe ɖeka ɖeka nu. Le nuwuwu la, ŋlɔ ŋuɖoɖo mamlɛtɔ ɖe fli "
                'vovo dzi abe "ŋuɖoɖoae nye N." ene, afi si N nye xexlẽdzesi.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="ha",
            name="Hausa",
            question_prefix="Tambaya:",
            cot_cue="Amsa mataki-mataki:",
            final_line="Amsar ita ce {answer}.",
            answer_phrases=(
                "Amsar ƙarshe ita ce", "amsar ƙarshe ita ce", "Amsar ita ce", "amsar ita ce", "Amsa:",
            ),
            instruction=(
                "Warware wannan matsalar lissafi mataki-mataki. A ƙarshe, rubuta amsar ƙarshe a layi na "
                'daban kamar haka: "Amsar ita ce N.", inda N lamba ce.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="ig",
            name="Igbo",
            question_prefix="Ajụjụ:",
            cot_cue="Azịza nzọụkwụ n'otu n'otu:",
            final_line="Azịza ya bụ {answer}.",
            answer_phrases=(
                "Azịza ikpeazụ bụ", "azịza ikpeazụ bụ", "Azịza ya bụ", "azịza ya bụ", "Azịza:",
            ),
            instruction=(
                "Dozie ajụjụ mgbakọ na mwepụ a nzọụkwụ n'otu n'otu. N'ikpeazụ, dee azịza ikpeazụ n'ahịrị "
                'nke ya dị ka "Azịza ya bụ N.", ebe N bụ ọnụọgụ.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="rw",
            name="Kinyarwanda",
            question_prefix="Ikibazo:",
            cot_cue="Igisubizo intambwe ku yindi:",
            final_line="Igisubizo ni {answer}.",
            answer_phrases=(
                "Igisubizo cya nyuma ni", "igisubizo cya nyuma ni", "Igisubizo ni", "igisubizo ni", "Igisubizo:",
            ),
            instruction=(
                "Kemura iki kibazo cy'imibare intambwe ku yindi. Ku iherezo, andika igisubizo cya nyuma ku "
                'murongo wacyo wonyine mu buryo bukurikira: "Igisubizo ni N.", aho N ari umubare.'
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="ln",
            name="Lingala",
            question_prefix="Motuna:",
            cot_cue="Eyano na matambe:",
            final_line="Eyano ezali {answer}.",
            answer_phrases=(
                "Eyano ya nsuka ezali", "eyano ya nsuka ezali", "Eyano ezali", "eyano ezali", "Eyano:",
            ),
            instruction=(
                "Silisa mokakatano oyo ya matematiki etape na etape. Na nsuka, koma eyano ya nsuka na "
                'molɔngɔ na yango moko lokola "Eyano ezali N.", epai N ezali motuya.'
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="lg",
            name="Luganda",
            question_prefix="Ekibuuzo:",
            cot_cue="Okuddamu mu mitendera:",
            final_line="Ansa eri {answer}.",
            answer_phrases=(
                "Ansa esembayo eri", "ansa esembayo eri", "Ansa eri", "ansa eri", "Ansa:",
            ),
            instruction=(
                "Gonjoola ekibuuzo kino eky'okubala mutendera ku mutendera. Ku nkomerero, wandiika ansa "
                'esembayo ku lunyiriri lwayo yokka nga "Ansa eri N.", N nga namba.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="om",
            name="Oromo",
            question_prefix="Gaaffii:",
            cot_cue="Deebii tartiiba tartiibaan:",
            final_line="Deebiin isaa {answer}.",
            answer_phrases=(
                "Deebiin dhumaa", "deebiin dhumaa", "Deebiin isaa", "deebiin isaa", "Deebii:",
            ),
            instruction=(
                "Rakkoo herregaa armaan gadii tartiiba tartiibaan furi. Dhuma irratti, deebii dhumaa sarara "
                'mataa isaa irratti akka "Deebiin isaa N." jedhutti barreessi; N lakkoofsa dha.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="sn",
            name="Shona",
            question_prefix="Mubvunzo:",
            cot_cue="Mhinduro nhanho nenhanho:",
            final_line="Mhinduro kumubvunzo ndi {answer}.",
            answer_phrases=(
                "Mhinduro yekupedzisira ndi", "mhinduro yekupedzisira ndi", "Mhinduro kumubvunzo ndi", "mhinduro kumubvunzo ndi", "Mhinduro:",
            ),
            instruction=(
                "Gadzirisa dambudziko reMasvomhu rinotevera nhanho nenhanho. Pakupedzisira, nyora mhinduro "
                'yekupedzisira pamutsara wayo wega se "Mhinduro kumubvunzo ndi N.", apo N inhamba.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="st",
            name="Sesotho",
            question_prefix="Potso:",
            cot_cue="Karabo ka mehato:",
            final_line="Karabo ke {answer}.",
            answer_phrases=(
                "Karabo ya ho qetela ke", "karabo ya ho qetela ke", "Karabo ke", "karabo ke", "Karabo:",
            ),
            instruction=(
                "Rarolla bothata bona ba dipalo mohato ka mohato. Qetellong, ngola karabo ya ho qetela "
                'moleng wa yona o le mong jwalo ka "Karabo ke N.", moo N e leng palo.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="tw",
            name="Twi",
            question_prefix="Asɛmmisa:",
            cot_cue="Mmuaeɛ anammɔn anammɔn:",
            final_line="Ne nnyiano yɛ {answer}.",
            answer_phrases=(
                "Ne nnyiano yɛ", "ne nnyiano yɛ", "Mmuaeɛ:",
            ),
            instruction=(
                "Di akontabuo haw yi ho dwuma anammɔn anammɔn. Awieeɛ no, kyerɛw mmuaeɛ a ɛtwa toɔ no wɔ ne "
                'nkyerɛwdeɛ so sɛ "Ne nnyiano yɛ N.", baabi a N yɛ nɔma.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="vai",
            name="Vai",
            question_prefix="Question:",
            cot_cue="Step-by-Step Answer:",
            final_line="The answer is {answer}.",
            answer_phrases=(
                "The final answer is", "the final answer is", "The answer is", "the answer is", "Final answer:", "Answer:",
            ),
            instruction=(
                "Solve the following math problem step by step. At the end, write the final answer on its "
                'own line as "The answer is N.", where N is a number.'
            ),
            decimal_sep=".",
            native_digits="꘠꘡꘢꘣꘤꘥꘦꘧꘨꘩",
            prompt_unchecked=True,
        ),
        Language(
            code="wo",
            name="Wolof",
            question_prefix="Laaj:",
            cot_cue="Tontu, tappa ak tappa:",
            final_line="Tontu li {answer} la.",
            answer_phrases=(
                "Tontu li", "tontu li", "Tontu:",
            ),
            instruction=(
                "Saafal laaj bii ci xayma, tappa ak tappa. Ci mujj gi, bindal tontu li mujj ci benn rëdd bu "
                'ko moom rekk, ni "Tontu li N la.", N mooy benn lim.'
            ),
            decimal_sep=",",
            prompt_unchecked=True,
        ),
        Language(
            code="xh",
            name="Xhosa",
            question_prefix="Umbuzo:",
            cot_cue="Impendulo inyathelo ngenyathelo:",
            final_line="Impendulo ngu {answer}.",
            answer_phrases=(
                "Impendulo yokugqibela ngu", "impendulo yokugqibela ngu", "Impendulo ngu", "impendulo ngu", "Impendulo:",
            ),
            instruction=(
                "Sombulula le ngxaki yezibalo ilandelayo inyathelo ngenyathelo. Ekugqibeleni, bhala "
                'impendulo yokugqibela kumgca wayo yodwa ngolu hlobo: "Impendulo ngu N.", apho u-N elinani.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="yo",
            name="Yoruba",
            question_prefix="Ìbéèrè:",
            cot_cue="Ìdáhùn lẹ́sẹsẹ:",
            final_line="Ìdáhùn náà ni {answer}.",
            answer_phrases=(
                "Ìdáhùn ìkẹyìn ni", "ìdáhùn ìkẹyìn ni", "Ìdáhùn náà ni", "ìdáhùn náà ni", "Ìdáhùn:",
            ),
            instruction=(
                "Yanjú ìṣòro ìṣirò yìí ní ìgbésẹ̀ kọ̀ọ̀kan. Ní ìparí, kọ ìdáhùn ìkẹyìn sí ìlà tirẹ̀ lọ́tọ̀ "
                'báyìí: "Ìdáhùn náà ni N.", níbi tí N jẹ́ nọ́mbà.'
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
        Language(
            code="zu",
            name="Zulu",
            question_prefix="Umbuzo:",
            cot_cue="Impendulo isinyathelo ngesinyathelo:",
            final_line="Impendulo ithi {answer}.",
            answer_phrases=(
                "Impendulo yokugcina ithi", "impendulo yokugcina ithi", "Impendulo ithi", "impendulo ithi", "Impendulo:",
            ),
            instruction=(
                "Xazulula le nkinga yezibalo elandelayo isinyathelo ngesinyathelo. Ekugcineni, bhala "
                'impendulo yokugcina emugqeni wayo wodwa ngale ndlela: "Impendulo ithi N.", lapho u-N '
                "eyinombolo."
            ),
            decimal_sep=".",
            prompt_unchecked=True,
        ),
    ]
}

#: MGSM's 11 languages, in MGSM's order.
MGSM_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "ru", "zh", "ja", "th", "sw", "bn", "te")
#: Languages of the translated GSM8K *train* questions (MGSM8KInstruct), plus English.
GSM8K_TRAIN_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "ja", "ru", "sw", "zh")
#: Languages of the translated GSM8K *test* set on the Hub (openGPT-X/gsm8kx, its 20 configs), plus English.
GSM8K_TEST_LANGUAGES: tuple[str, ...] = (
    "en", "bg", "da", "de", "et", "fi", "fr", "el", "it", "lv", "lt", "nl", "pl", "pt", "ro", "sv", "sk", "sl", "es",
    "cs", "hu",
)
#: MSVAMP's 10 languages (machine-translated SVAMP; no Telugu).
MSVAMP_LANGUAGES: tuple[str, ...] = ("en", "bn", "de", "es", "fr", "ja", "ru", "sw", "th", "zh")
#: AfriMGSM's 19 languages (masakhane/afrimgsm: MGSM human-translated into 16 African languages, plus en, fr, sw).
AFRIMGSM_LANGUAGES: tuple[str, ...] = (
    "en", "am", "ee", "fr", "ha", "ig", "rw", "ln", "lg", "om", "sn", "st", "sw", "tw", "vai", "wo", "xh", "yo", "zu",
)
#: NLLB-200 codes of the table's languages (the machine-translation models of ``translator=``, M2M/NLLB style);
#: Vai has none.
NLLB_CODES: dict[str, str] = {
    "en": "eng_Latn", "es": "spa_Latn", "fr": "fra_Latn", "de": "deu_Latn", "ru": "rus_Cyrl", "zh": "zho_Hans",
    "ja": "jpn_Jpan", "th": "tha_Thai", "sw": "swh_Latn", "bn": "ben_Beng", "te": "tel_Telu", "it": "ita_Latn",
    "bg": "bul_Cyrl", "da": "dan_Latn", "et": "est_Latn", "fi": "fin_Latn", "el": "ell_Grek", "lv": "lvs_Latn",
    "lt": "lit_Latn", "nl": "nld_Latn", "pl": "pol_Latn", "pt": "por_Latn", "ro": "ron_Latn", "sv": "swe_Latn",
    "sk": "slk_Latn", "sl": "slv_Latn", "cs": "ces_Latn", "hu": "hun_Latn", "am": "amh_Ethi", "ee": "ewe_Latn",
    "ha": "hau_Latn", "ig": "ibo_Latn", "rw": "kin_Latn", "ln": "lin_Latn", "lg": "lug_Latn", "om": "gaz_Latn",
    "sn": "sna_Latn", "st": "sot_Latn", "tw": "twi_Latn", "wo": "wol_Latn", "xh": "xho_Latn", "yo": "yor_Latn",
    "zu": "zul_Latn",
}
#: The paper's default pool (the eight verifier-training languages).
DEFAULT_POOL: tuple[str, ...] = ("en", "de", "es", "fr", "ru", "zh", "ja", "th")
#: Languages of the generated arithmetic problems (``bestofl_tasks.arith``): the paper's pool.
ARITH_LANGUAGES: tuple[str, ...] = DEFAULT_POOL


def get_language(code: str, supported: tuple[str, ...] | None = None) -> Language:
    """Return the table entry for ``code``; raise a ValueError listing the supported codes."""
    allowed = supported if supported is not None else tuple(LANGUAGES)
    if code not in allowed or code not in LANGUAGES:
        raise ValueError(
            f"Unknown language code {code!r}. Supported: {', '.join(allowed)}."
        )
    return LANGUAGES[code]


def final_answer_line(answer: str, lang: str) -> str:
    """The target language's final answer line with ASCII digits, e.g. ``Die Antwort lautet 18.``.

    ``answer`` is canonical (``.`` as decimal point). In a language that writes decimals with a comma,
    ``1.125`` reads as 1125 (``.`` groups thousands there), so exactly three decimals get a fourth, ``1.1250``.
    """
    spec = get_language(lang)
    if spec.decimal_sep == "," and len(answer.partition(".")[2]) == 3:
        answer += "0"
    return spec.final_line.format(answer=answer)
