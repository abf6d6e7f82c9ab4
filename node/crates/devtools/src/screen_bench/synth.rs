//! A deterministic synthetic watchlist and a query set with ground truth, for the
//! screening benchmark (no downloads: every name is built here from small pools).
//!
//! Names come from several locales and scripts: Western European, Russian (Cyrillic,
//! several romanisation styles), Arabic (Arabic script and several Latin spellings,
//! `al-` family names, `bin`), Persian (Persian script), Turkish (diacritics), Greek
//! (Greek script), Chinese (Han and pinyin) persons, and organisations (Latin brands with
//! sector words and legal forms, Russian `ООО «...»`, Chinese `...有限公司`). Each entry
//! remembers how its names were rendered so that query variants can be made from the
//! same parts: typos, script changes, reordered tokens, a dropped middle name, a changed
//! legal form, an added honorific. True negatives come in three kinds
//! ([`NegativeKind`]): freshly generated subjects that are not listed, the given name of
//! one listed person with the surname of another (the way a real negative set is made),
//! and common names of several cultures.

use std::collections::HashSet;

use wlnode_crypto::model::{AgencyCode, CountryCode, EntryId, Identifier, SubjectKind};
use wlnode_crypto::time::PartialDate;

use wlnode_screen::ScreenDoc;

/// SplitMix64: small, fast, deterministic.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n as u64).unwrap_or(0)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }

    /// One of `xs` (the default value when empty).
    pub fn pick<T: Copy + Default>(&mut self, xs: &[T]) -> T {
        xs.get(self.below(xs.len())).copied().unwrap_or_default()
    }
}

// ---------------------------------------------------------------- pools

const WESTERN_GIVEN: &[&str] = &[
    "James",
    "John",
    "Robert",
    "Michael",
    "William",
    "David",
    "Richard",
    "Thomas",
    "Charles",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Paul",
    "Steven",
    "Andrew",
    "Peter",
    "George",
    "Edward",
    "Henry",
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Hans",
    "Klaus",
    "Jürgen",
    "Stefan",
    "Wolfgang",
    "Uwe",
    "Dieter",
    "Günter",
    "Françoise",
    "Jean",
    "Pierre",
    "Michel",
    "Philippe",
    "Alain",
    "Luc",
    "Hélène",
    "Giuseppe",
    "Giovanni",
    "Marco",
    "Luca",
    "Francesco",
    "Alessandro",
    "José",
    "Juan",
    "Carlos",
    "Miguel",
    "Javier",
    "Antonio",
    "Manuel",
    "Sofía",
    "Lars",
    "Henrik",
    "Jan",
    "Pieter",
    "Tomasz",
    "Krzysztof",
    "Piotr",
    "Ágnes",
    "László",
    "Zoltán",
];
const WESTERN_SUR_A: &[&str] = &[
    "Ash", "Black", "Brook", "Hart", "Wood", "Stone", "Kirk", "Fair", "Green", "Mil", "Wind",
    "Ros", "Schwarz", "Berg", "Stein", "Hof", "Kirch", "Lind", "Wald", "Ried", "Feld", "Mor",
    "Ber", "Dub", "Mar", "Fon", "Bel", "Gar", "Val", "Ferr", "Mont", "Cas", "Rom", "Bianc", "Hol",
    "Van der", "De", "Kowal", "Nowak", "Wiśn", "Lewand", "Szab", "Nag", "Eriks", "Lund", "Dahl",
    "Carl", "Björk", "Mül", "Schmi", "Wag", "Beck", "Rich", "Hoff", "Fisch",
];
const WESTERN_SUR_B: &[&str] = &[
    "ton", "ford", "well", "wood", "field", "ley", "man", "mann", "er", "berg", "stein", "hoff",
    "feld", "ard", "ier", "eau", "ini", "etti", "ez", "ero", "ano", "elli", "oni", "ell", "by",
    "worth", "ham", "ski", "czyk", "ewski", "o", "son", "sen", "gren", "quist", "ler", "ner",
    "ling", "hardt", "mayer",
];

/// Cyrillic given names; the Latin forms come from romanisation.
const RU_GIVEN: &[&str] = &[
    "Сергей",
    "Иван",
    "Алексей",
    "Дмитрий",
    "Николай",
    "Владимир",
    "Андрей",
    "Михаил",
    "Юрий",
    "Олег",
    "Павел",
    "Виктор",
    "Игорь",
    "Борис",
    "Анатолий",
    "Роман",
    "Максим",
    "Денис",
    "Константин",
    "Евгений",
    "Григорий",
    "Аркадий",
    "Тимур",
    "Руслан",
    "Вадим",
    "Геннадий",
    "Станислав",
    "Фёдор",
    "Илья",
    "Кирилл",
];
const RU_PATRONYMIC: &[&str] = &[
    "Сергеевич",
    "Иванович",
    "Алексеевич",
    "Дмитриевич",
    "Николаевич",
    "Владимирович",
    "Андреевич",
    "Михайлович",
    "Юрьевич",
    "Олегович",
    "Павлович",
    "Викторович",
    "Игоревич",
    "Борисович",
    "Анатольевич",
    "Романович",
    "Евгеньевич",
    "Григорьевич",
    "Петрович",
    "Васильевич",
];
const RU_ROOT: &[&str] = &[
    "Петр",
    "Иван",
    "Смирн",
    "Кузнец",
    "Поп",
    "Васил",
    "Сокол",
    "Михайл",
    "Новик",
    "Федор",
    "Мороз",
    "Волк",
    "Алексе",
    "Лебед",
    "Семен",
    "Егор",
    "Павл",
    "Козл",
    "Степан",
    "Орл",
    "Андре",
    "Макар",
    "Захар",
    "Зайц",
    "Солов",
    "Борис",
    "Яковл",
    "Григор",
    "Роман",
    "Вороб",
    "Кузьм",
    "Фрол",
    "Александр",
    "Корол",
    "Гус",
    "Кисел",
    "Сорок",
    "Виноград",
    "Ковал",
    "Бел",
    "Медвед",
    "Антон",
    "Тарас",
    "Жук",
    "Баран",
    "Филипп",
    "Комар",
    "Давыд",
    "Беля",
    "Герасим",
    "Богдан",
    "Осип",
    "Сидор",
    "Матве",
    "Тит",
    "Марк",
    "Мирон",
    "Крыл",
    "Кулик",
    "Карп",
    "Влас",
    "Мельник",
    "Гаврил",
    "Тихон",
    "Казак",
    "Данил",
    "Тимофе",
    "Черн",
    "Абрам",
    "Мартын",
    "Ефим",
    "Щербак",
    "Назар",
    "Калин",
    "Черныш",
    "Бык",
    "Масл",
    "Родион",
    "Коновал",
    "Лазар",
    "Ворон",
    "Клим",
    "Филат",
    "Пономар",
    "Голуб",
    "Прохор",
    "Наум",
    "Потап",
    "Журавл",
    "Трофим",
    "Леон",
    "Собол",
    "Ермак",
    "Колесник",
    "Гончар",
    "Никифор",
    "Грач",
    "Кот",
    "Гриш",
    "Ефрем",
    "Архип",
    "Гром",
    "Кирилл",
    "Малыш",
    "Моисе",
    "Аким",
    "Горбун",
    "Анисим",
    "Лукьян",
    "Скворц",
    "Нестер",
    "Симон",
    "Харитон",
    "Княз",
    "Цветк",
    "Митрофан",
    "Аксен",
    "Логин",
    "Горшк",
    "Красн",
    "Демид",
    "Рыбак",
    "Сафон",
    "Плотник",
    "Хохл",
    "Фаде",
    "Молчан",
    "Игнат",
    "Литвин",
    "Ерш",
    "Ушак",
];
const RU_SYLL: &[&str] = &[
    "бо", "ро", "да", "ку", "ле", "ми", "на", "пе", "са", "ти", "во", "за", "гор", "лин", "мар",
    "тов", "кан", "бел", "шев", "жу", "хар", "чер", "дуб", "ряб", "лог", "пуш", "зим", "рад",
];
const RU_SUFFIX: &[&str] = &["ов", "ев", "ин", "енко", "ский", "ович", "ук", "як"];

/// Arabic names: Arabic script, then Latin spellings (first is the most common).
const AR_GIVEN: &[(&str, &[&str])] = &[
    (
        "محمد",
        &["Mohammed", "Mohammad", "Muhammad", "Mohamed", "Muhammed"],
    ),
    ("أحمد", &["Ahmed", "Ahmad"]),
    ("علي", &["Ali"]),
    ("حسن", &["Hassan", "Hasan"]),
    ("حسين", &["Hussein", "Husain", "Hussain", "Husayn"]),
    ("خالد", &["Khaled", "Khalid"]),
    ("عمر", &["Omar", "Umar"]),
    ("يوسف", &["Youssef", "Yousef", "Yusuf"]),
    ("إبراهيم", &["Ibrahim", "Ebrahim"]),
    ("عبدالله", &["Abdullah", "Abdallah", "Abdulla"]),
    (
        "عبد الرحمن",
        &[
            "Abdul Rahman",
            "Abdulrahman",
            "Abd al-Rahman",
            "Abdelrahman",
        ],
    ),
    ("عبد العزيز", &["Abdul Aziz", "Abdulaziz", "Abdelaziz"]),
    ("سعيد", &["Saeed", "Said", "Saiid"]),
    ("سالم", &["Salem", "Salim"]),
    ("ماجد", &["Majed", "Majid"]),
    ("فيصل", &["Faisal", "Faysal"]),
    ("طارق", &["Tariq", "Tarek", "Tarik"]),
    ("ناصر", &["Nasser", "Nasir"]),
    ("كريم", &["Karim", "Kareem"]),
    ("جمال", &["Jamal", "Gamal"]),
    ("مصطفى", &["Mustafa", "Moustafa", "Mostafa"]),
    ("محمود", &["Mahmoud", "Mahmud"]),
    ("سليمان", &["Suleiman", "Sulaiman", "Sulayman"]),
    ("هشام", &["Hisham", "Hesham"]),
    ("وليد", &["Walid", "Waleed"]),
    ("زياد", &["Ziad", "Ziyad"]),
    ("عادل", &["Adel", "Adil"]),
    ("نبيل", &["Nabil", "Nabeel"]),
    ("رشيد", &["Rashid", "Rasheed"]),
    ("منصور", &["Mansour", "Mansur"]),
    ("بلال", &["Bilal"]),
    ("حمزة", &["Hamza", "Hamzah"]),
    ("أنس", &["Anas"]),
    ("ياسر", &["Yasser", "Yasir"]),
    ("فارس", &["Fares", "Faris"]),
    ("عثمان", &["Othman", "Osman", "Uthman"]),
    ("قاسم", &["Qasim", "Kasim", "Qassem"]),
    ("مروان", &["Marwan"]),
    ("سامي", &["Sami", "Samy"]),
    ("جاسم", &["Jassim", "Jasim"]),
];
const AR_FAMILY: &[(&str, &[&str])] = &[
    ("الرشيد", &["al-Rashid", "Al Rasheed", "el-Rashid"]),
    ("الحسيني", &["al-Husseini", "Al Hussaini"]),
    ("التكريتي", &["al-Tikriti", "Al Tikriti"]),
    ("الشمري", &["al-Shammari", "Al Shamari"]),
    ("العتيبي", &["al-Otaibi", "Al Utaybi"]),
    ("القحطاني", &["al-Qahtani", "Al Kahtani"]),
    ("الدوسري", &["al-Dosari", "Al Dossary"]),
    ("الزهراني", &["al-Zahrani", "Al Zahrany"]),
    ("الغامدي", &["al-Ghamdi", "Al Ghamdy"]),
    ("المالكي", &["al-Maliki", "Al Malki"]),
    ("الحربي", &["al-Harbi", "Al Harby"]),
    ("العنزي", &["al-Anzi", "Al Enezi"]),
    ("السعدي", &["al-Saadi", "Al Sa'di"]),
    ("البغدادي", &["al-Baghdadi"]),
    ("الحلبي", &["al-Halabi"]),
    ("المصري", &["al-Masri", "el-Masry"]),
    ("الكبيسي", &["al-Kubaisi", "Al Kubaysi"]),
    ("الجبوري", &["al-Jubouri", "Al Jaburi"]),
    ("الدليمي", &["al-Dulaimi", "Al Dulaymi"]),
    ("العبيدي", &["al-Obaidi", "Al Ubaydi"]),
    ("الخزرجي", &["al-Khazraji"]),
    ("النعيمي", &["al-Nuaimi", "Al Naimi"]),
    ("الكعبي", &["al-Kaabi", "Al Ka'bi"]),
    ("المهيري", &["al-Muhairi", "Al Mheiri"]),
    ("الفلاسي", &["al-Falasi", "Al Falasy"]),
    ("الشامسي", &["al-Shamsi"]),
    ("الظاهري", &["al-Dhaheri", "Al Daheri"]),
    ("البلوشي", &["al-Balushi", "Al Baloushi"]),
    ("الحمادي", &["al-Hammadi", "Al Hamadi"]),
    ("الكتبي", &["al-Ketbi", "Al Kitbi"]),
    ("حداد", &["Haddad"]),
    ("خوري", &["Khoury", "Khouri"]),
    ("نصر الله", &["Nasrallah", "Nasr Allah"]),
    ("عطية", &["Attia", "Atiyah"]),
    ("بركات", &["Barakat"]),
    ("شهاب", &["Shehab", "Shihab"]),
    ("منصور", &["Mansour"]),
    ("صالح", &["Saleh", "Salih"]),
    ("عيسى", &["Issa", "Eissa"]),
    ("يونس", &["Younes", "Yunus"]),
];

const FA_GIVEN: &[(&str, &[&str])] = &[
    ("محمد", &["Mohammad", "Mohamad"]),
    ("علی", &["Ali"]),
    ("رضا", &["Reza"]),
    ("حسین", &["Hossein", "Hosein"]),
    ("مهدی", &["Mehdi", "Mahdi"]),
    ("امیر", &["Amir"]),
    ("حمید", &["Hamid"]),
    ("مجید", &["Majid"]),
    ("سعید", &["Saeed", "Saied"]),
    ("جواد", &["Javad"]),
    ("مسعود", &["Masoud", "Massoud"]),
    ("داوود", &["Davoud", "Davood"]),
    ("بهروز", &["Behrouz", "Behrooz"]),
    ("فرهاد", &["Farhad"]),
    ("کامران", &["Kamran"]),
    ("پرویز", &["Parviz"]),
    ("نادر", &["Nader"]),
    ("کاظم", &["Kazem"]),
    ("محسن", &["Mohsen"]),
    ("عباس", &["Abbas"]),
];
const FA_FAMILY_ROOT: &[(&str, &[&str])] = &[
    ("رضا", &["Reza"]),
    ("حسین", &["Hossein"]),
    ("محمد", &["Mohammad"]),
    ("احمد", &["Ahmad"]),
    ("کریم", &["Karim"]),
    ("جعفر", &["Jafar"]),
    ("قاسم", &["Ghasem"]),
    ("نوری", &["Nouri"]),
    ("طاهر", &["Taher"]),
    ("صادق", &["Sadegh"]),
    ("موسوی", &["Mousavi"]),
    ("تهرانی", &["Tehrani"]),
    ("شیرازی", &["Shirazi"]),
    ("اصفهانی", &["Esfahani"]),
    ("رحیم", &["Rahim"]),
    ("یزدان", &["Yazdan"]),
    ("کاظم", &["Kazem"]),
    ("نجف", &["Najaf"]),
    ("باقر", &["Bagher"]),
    ("امین", &["Amin"]),
];
const FA_SUFFIX: &[(&str, &str)] = &[
    ("ی", "i"),
    ("زاده", "zadeh"),
    ("پور", "pour"),
    ("نژاد", "nejad"),
    ("", ""),
];

const TR_GIVEN: &[&str] = &[
    "Mehmet",
    "Ahmet",
    "Mustafa",
    "Ali",
    "Hüseyin",
    "Hasan",
    "İbrahim",
    "İsmail",
    "Osman",
    "Yusuf",
    "Murat",
    "Ömer",
    "Ramazan",
    "Halil",
    "Süleyman",
    "Abdullah",
    "Mahmut",
    "Salih",
    "Recep",
    "Kemal",
    "Fatma",
    "Ayşe",
    "Emine",
    "Hatice",
    "Zeynep",
    "Elif",
    "Meryem",
    "Şerife",
    "Zehra",
    "Hülya",
    "Özlem",
    "Gülsüm",
    "Çağrı",
    "Tuğba",
    "Gökhan",
    "Serkan",
    "Burak",
    "Emre",
    "Uğur",
    "Barış",
];
const TR_SUR_A: &[&str] = &[
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Yıldız",
    "Yıldırım",
    "Öztürk",
    "Aydın",
    "Özdemir",
    "Arslan",
    "Doğan",
    "Kılıç",
    "Aslan",
    "Çetin",
    "Kara",
    "Koç",
    "Kurt",
    "Özkan",
    "Şimşek",
    "Polat",
    "Özcan",
    "Korkmaz",
    "Çakır",
    "Erdoğan",
    "Yavuz",
    "Can",
    "Acar",
    "Şen",
    "Aktaş",
    "Güler",
    "Yalçın",
    "Güneş",
    "Bozkurt",
    "Bulut",
    "Keskin",
    "Ünal",
    "Turan",
    "Gül",
    "Özer",
    "Ak",
    "Gök",
    "Ay",
    "Tekin",
    "Er",
];
const TR_SUR_B: &[&str] = &[
    "", "", "oğlu", "er", "kan", "türk", "soy", "han", "taş", "men",
];

const GR_GIVEN: &[&str] = &[
    "Γεώργιος",
    "Ιωάννης",
    "Κωνσταντίνος",
    "Δημήτριος",
    "Νικόλαος",
    "Παναγιώτης",
    "Βασίλειος",
    "Χρήστος",
    "Αθανάσιος",
    "Μιχαήλ",
    "Ευάγγελος",
    "Σπυρίδων",
    "Αντώνιος",
    "Αναστάσιος",
    "Θεόδωρος",
    "Ανδρέας",
    "Μαρία",
    "Ελένη",
    "Αικατερίνη",
    "Βασιλική",
    "Σοφία",
    "Αγγελική",
    "Γεωργία",
    "Δήμητρα",
    "Κωνσταντίνα",
];
const GR_ROOT: &[&str] = &[
    "Γεωργ",
    "Δημητρ",
    "Νικολ",
    "Κωνσταντ",
    "Αντων",
    "Βασιλ",
    "Ιωανν",
    "Χριστ",
    "Μιχαλ",
    "Πετρ",
    "Σταυρ",
    "Αθανασ",
    "Λαμπρ",
    "Καρ",
    "Μαυρ",
    "Ζαχαρ",
    "Θεοδωρ",
    "Ανδρε",
    "Σπυρ",
    "Ευαγγελ",
    "Παππ",
    "Μαρκ",
    "Στεφαν",
    "Φωτ",
    "Αλεξ",
    "Τσακ",
    "Κοντ",
    "Μαν",
    "Λιακ",
    "Ξεν",
];
const GR_SUFFIX: &[&str] = &[
    "όπουλος",
    "ίδης",
    "άκης",
    "ίου",
    "άτος",
    "άς",
    "έας",
    "ίτης",
];

const ZH_SURNAME: &[(&str, &str)] = &[
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("吴", "Wu"),
    ("周", "Zhou"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("马", "Ma"),
    ("朱", "Zhu"),
    ("胡", "Hu"),
    ("郭", "Guo"),
    ("何", "He"),
    ("高", "Gao"),
    ("林", "Lin"),
    ("罗", "Luo"),
    ("郑", "Zheng"),
    ("梁", "Liang"),
    ("谢", "Xie"),
    ("宋", "Song"),
    ("唐", "Tang"),
    ("许", "Xu"),
    ("韩", "Han"),
    ("冯", "Feng"),
    ("邓", "Deng"),
    ("曹", "Cao"),
    ("彭", "Peng"),
    ("曾", "Zeng"),
    ("肖", "Xiao"),
    ("田", "Tian"),
    ("董", "Dong"),
    ("袁", "Yuan"),
    ("潘", "Pan"),
    ("于", "Yu"),
    ("蒋", "Jiang"),
    ("蔡", "Cai"),
    ("余", "Yu"),
    ("杜", "Du"),
    ("叶", "Ye"),
    ("程", "Cheng"),
    ("苏", "Su"),
    ("魏", "Wei"),
    ("吕", "Lu"),
    ("丁", "Ding"),
    ("任", "Ren"),
    ("沈", "Shen"),
];
const ZH_GIVEN: &[(&str, &str)] = &[
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀", "xiu"),
    ("霞", "xia"),
    ("平", "ping"),
    ("刚", "gang"),
    ("桂", "gui"),
    ("华", "hua"),
    ("建", "jian"),
    ("国", "guo"),
    ("文", "wen"),
    ("辉", "hui"),
    ("鹏", "peng"),
    ("小", "xiao"),
    ("海", "hai"),
    ("宇", "yu"),
    ("志", "zhi"),
    ("新", "xin"),
    ("东", "dong"),
    ("晓", "xiao"),
    ("红", "hong"),
    ("林", "lin"),
    ("波", "bo"),
    ("斌", "bin"),
    ("飞", "fei"),
    ("龙", "long"),
    ("春", "chun"),
    ("玉", "yu"),
    ("成", "cheng"),
    ("峰", "feng"),
    ("亮", "liang"),
    ("凯", "kai"),
    ("浩", "hao"),
    ("博", "bo"),
    ("嘉", "jia"),
    ("睿", "rui"),
    ("思", "si"),
    ("梓", "zi"),
    ("泽", "ze"),
    ("天", "tian"),
    ("德", "de"),
    ("安", "an"),
    ("荣", "rong"),
    ("庆", "qing"),
    ("永", "yong"),
    ("长", "chang"),
];
const ZH_CITY: &[(&str, &str)] = &[
    ("北京", "Beijing"),
    ("上海", "Shanghai"),
    ("深圳", "Shenzhen"),
    ("广州", "Guangzhou"),
    ("天津", "Tianjin"),
    ("大连", "Dalian"),
    ("青岛", "Qingdao"),
    ("厦门", "Xiamen"),
    ("宁波", "Ningbo"),
    ("苏州", "Suzhou"),
    ("成都", "Chengdu"),
    ("重庆", "Chongqing"),
    ("武汉", "Wuhan"),
    ("西安", "Xian"),
    ("香港", "Xianggang"),
    ("杭州", "Hangzhou"),
];
const ZH_SECTOR: &[(&str, &str)] = &[
    ("科技", "Keji"),
    ("贸易", "Maoyi"),
    ("电子", "Dianzi"),
    ("机械", "Jixie"),
    ("国际", "Guoji"),
    ("实业", "Shiye"),
    ("化工", "Huagong"),
    ("物流", "Wuliu"),
    ("能源", "Nengyuan"),
    ("光电", "Guangdian"),
];

const BRAND_A: &[&str] = &[
    "Zen", "Nova", "Alv", "Kor", "Tex", "Vel", "Mar", "Sol", "Tri", "Quan", "Hel", "Orb", "Vor",
    "Lum", "Cyr", "Dyn", "Ast", "Bor", "Cal", "Dex", "Elt", "Fer", "Gal", "Hyd", "Ion", "Jet",
    "Kal", "Lex", "Mag", "Nex", "Opt", "Pol", "Rad", "Sig", "Tor", "Ult", "Ver", "Xen", "Zor",
    "Aer", "Bel", "Cor", "Del", "Ecl", "Fal", "Gen", "Hor", "Ind", "Kin", "Lyr",
];
const BRAND_B: &[&str] = &[
    "trix", "tek", "ora", "ex", "ion", "ara", "ium", "on", "ant", "ix", "eon", "yx", "ano", "ris",
    "tron", "ova", "ica", "ent", "ar", "is", "olt", "ax", "era", "ine", "ust", "ado", "ex", "ell",
    "iva", "um",
];
const BRAND_WORD: &[&str] = &[
    "Global",
    "United",
    "Eastern",
    "Pacific",
    "Atlas",
    "Orion",
    "Delta",
    "Falcon",
    "Phoenix",
    "Summit",
    "Crescent",
    "Horizon",
    "Sterling",
    "Pioneer",
    "Meridian",
    "Vertex",
    "Apex",
    "Zenith",
    "Titan",
    "Golden",
    "Silver",
    "Royal",
    "Star",
    "Ocean",
    "Desert",
    "Emerald",
    "Sapphire",
    "Dubai",
    "Sharjah",
    "Istanbul",
    "Minsk",
    "Tashkent",
    "Almaty",
    "Karachi",
    "Singapore",
    "Riga",
    "Limassol",
    "Baku",
    "Tbilisi",
    "Yerevan",
    "Hong Kong",
    "Al Noor",
    "Al Amal",
    "Al Fajr",
    "Al Huda",
    "Al Safa",
    "Al Baraka",
    "Al Rawda",
];
const SECTOR: &[&str] = &[
    "Trading",
    "General Trading",
    "International",
    "Industries",
    "Technologies",
    "Technology",
    "Electronics",
    "Machinery",
    "Logistics",
    "Shipping",
    "Engineering",
    "Import Export",
    "Holdings",
    "Systems",
    "Components",
    "Aerospace",
    "Chemicals",
    "Energy",
    "Marine",
    "Solutions",
    "Supply",
    "Equipment",
    "Services",
    "Group",
    "Manufacturing",
];
const LEGAL: &[&str] = &[
    "LLC",
    "Ltd",
    "Limited",
    "GmbH",
    "FZE",
    "F.Z.E.",
    "FZCO",
    "OOO",
    "SARL",
    "S.A.",
    "Co.",
    "Co., Ltd.",
    "Inc",
    "Inc.",
    "Corp",
    "Corporation",
    "JSC",
    "PJSC",
    "LLP",
    "BV",
    "B.V.",
    "AG",
    "Sdn Bhd",
    "Pte Ltd",
    "DMCC",
    "L.L.C.",
];
const RU_ORG_FORM: &[&str] = &["ООО", "ЗАО", "ПАО", "ОАО"];
const RU_ORG_A: &[&str] = &[
    "Техно",
    "Спец",
    "Энерго",
    "Пром",
    "Электро",
    "Авиа",
    "Радио",
    "Хим",
    "Сиб",
    "Урал",
    "Волга",
    "Нефте",
    "Газо",
    "Мет",
    "Агро",
    "Строй",
    "Транс",
    "Интер",
    "Росс",
    "Вектор",
];
const RU_ORG_B: &[&str] = &[
    "пром",
    "маш",
    "сервис",
    "снаб",
    "торг",
    "импорт",
    "комплект",
    "систем",
    "технологии",
    "трейд",
    "групп",
    "холдинг",
    "снабжение",
    "монтаж",
    "прибор",
];

const HONORIFICS_LATIN: &[&str] = &[
    "Mr", "Mr.", "Dr.", "Dr", "Prof.", "General", "Col.", "Gen.", "Sheikh", "Haji", "Eng.",
];
const HONORIFICS_AR: &[&str] = &["Sheikh", "Haji", "Dr.", "Mr", "Sheikh Dr.", "Eng."];

// ---------------------------------------------------------------- names

/// The script a name is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// Latin letters (with or without diacritics).
    Latin,
    /// The locale's own script (Cyrillic, Arabic, Persian, Greek, Han).
    Native,
}

/// What a part of a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Given name.
    Given,
    /// Middle name, patronymic, father's name.
    Middle,
    /// Surname or family name.
    Surname,
    /// Organisation core name.
    Core,
    /// Sector word (Trading, Electronics).
    Sector,
    /// Legal form.
    Legal,
}

/// One part of a name, in both scripts.
#[derive(Clone, Debug)]
pub struct Part {
    /// Latin spellings; the first is the usual one.
    pub latin: Vec<String>,
    /// The native-script form, if the locale has one.
    pub native: Option<String>,
    /// What it is.
    pub role: Role,
}

/// Locales of the synthetic list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locale {
    /// Western and Central European persons.
    Western,
    /// Russian persons (Cyrillic).
    Russian,
    /// Arabic persons.
    Arabic,
    /// Persian persons.
    Persian,
    /// Turkish persons.
    Turkish,
    /// Greek persons.
    Greek,
    /// Chinese persons.
    Chinese,
    /// Organisations with Latin names.
    OrgLatin,
    /// Russian organisations.
    OrgRussian,
    /// Chinese organisations.
    OrgChinese,
}

/// A generated subject: its parts and how its parts join in the native script.
#[derive(Clone, Debug)]
pub struct Persona {
    /// Its locale.
    pub locale: Locale,
    /// Its parts in natural order.
    pub parts: Vec<Part>,
}

/// How a listed name was rendered.
#[derive(Clone, Debug)]
pub struct Rendering {
    /// The script.
    pub script: Script,
    /// The spelling chosen per part (Latin only).
    pub spelling: Vec<usize>,
    /// Romanisation style for Cyrillic/Greek (0 plain, 1 English, 2 German).
    pub style: u8,
    /// Which parts are included.
    pub include: Vec<bool>,
}

fn romanize(s: &str, style: u8) -> String {
    let plain = any_ascii::any_ascii(s);
    let plain = plain.replace("oy", "ou").replace("Oy", "Ou");
    match style {
        1 => {
            let mut out = Vec::new();
            for w in plain.split(' ') {
                let mut w = w.to_owned();
                for (from, to) in [("iy", "y"), ("ey", "ei"), ("yy", "y")] {
                    if w.ends_with(from) {
                        w.truncate(w.len() - from.len());
                        w.push_str(to);
                    }
                }
                out.push(w.replace("ks", "x").replace("'", ""));
            }
            out.join(" ")
        }
        2 => {
            let w = plain
                .replace("shch", "schtsch")
                .replace("sh", "sch")
                .replace("zh", "sch")
                .replace("kh", "ch")
                .replace("Kh", "Ch")
                .replace("Zh", "Sch")
                .replace("Sh", "Sch")
                .replace("ov ", "ow ")
                .replace("'", "");
            if w.ends_with("ov") {
                format!("{}w", w.trim_end_matches('v'))
            } else {
                w
            }
        }
        _ => plain.replace("'", ""),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn part(latin: Vec<String>, native: Option<String>, role: Role) -> Part {
    Part {
        latin,
        native,
        role,
    }
}

fn native_part(native: String, role: Role) -> Part {
    let latin = vec![
        romanize(&native, 0),
        romanize(&native, 1),
        romanize(&native, 2),
    ];
    part(latin, Some(native), role)
}

fn arabic_part(rng: &mut Rng, pool: &[(&str, &[&str])], role: Role) -> Part {
    let (ar, latin) = rng.pick(pool);
    part(
        latin.iter().map(|s| s.to_string()).collect(),
        Some(ar.to_owned()),
        role,
    )
}

/// Generates one subject of `locale`.
pub fn persona(rng: &mut Rng, locale: Locale) -> Persona {
    let mut parts = Vec::new();
    match locale {
        Locale::Western => {
            parts.push(part(
                vec![rng.pick(WESTERN_GIVEN).into()],
                None,
                Role::Given,
            ));
            if rng.chance(0.35) {
                parts.push(part(
                    vec![rng.pick(WESTERN_GIVEN).into()],
                    None,
                    Role::Middle,
                ));
            }
            let sur = format!("{}{}", rng.pick(WESTERN_SUR_A), rng.pick(WESTERN_SUR_B));
            parts.push(part(vec![sur], None, Role::Surname));
        }
        Locale::Russian => {
            parts.push(native_part(rng.pick(RU_GIVEN).into(), Role::Given));
            if rng.chance(0.6) {
                parts.push(native_part(rng.pick(RU_PATRONYMIC).into(), Role::Middle));
            }
            let root = if rng.chance(0.5) {
                rng.pick(RU_ROOT).to_owned()
            } else {
                capitalize(&format!("{}{}", rng.pick(RU_SYLL), rng.pick(RU_SYLL)))
            };
            let sur = format!("{root}{}", rng.pick(RU_SUFFIX));
            parts.push(native_part(sur, Role::Surname));
        }
        Locale::Arabic => {
            parts.push(arabic_part(rng, AR_GIVEN, Role::Given));
            parts.push(arabic_part(rng, AR_GIVEN, Role::Middle));
            if rng.chance(0.5) {
                parts.push(arabic_part(rng, AR_GIVEN, Role::Middle));
            }
            parts.push(arabic_part(rng, AR_FAMILY, Role::Surname));
        }
        Locale::Persian => {
            parts.push(arabic_part(rng, FA_GIVEN, Role::Given));
            if rng.chance(0.4) {
                parts.push(arabic_part(rng, FA_GIVEN, Role::Middle));
            }
            let (root_fa, root_lat) = rng.pick(FA_FAMILY_ROOT);
            let (suf_fa, suf_lat) = rng.pick(FA_SUFFIX);
            let lat: Vec<String> = root_lat
                .iter()
                .map(|l| {
                    let mut s = format!("{l}{suf_lat}");
                    if suf_lat == "i" && l.ends_with('a') {
                        s = format!("{l}ei");
                    }
                    s
                })
                .collect();
            let fa = if suf_fa == "ی" && root_fa.ends_with('ا') {
                format!("{root_fa}یی")
            } else {
                format!("{root_fa}{suf_fa}")
            };
            parts.push(part(lat, Some(fa), Role::Surname));
        }
        Locale::Turkish => {
            parts.push(part(vec![rng.pick(TR_GIVEN).into()], None, Role::Given));
            if rng.chance(0.3) {
                parts.push(part(vec![rng.pick(TR_GIVEN).into()], None, Role::Middle));
            }
            let sur = format!("{}{}", rng.pick(TR_SUR_A), rng.pick(TR_SUR_B));
            parts.push(part(vec![sur], None, Role::Surname));
        }
        Locale::Greek => {
            parts.push(native_part(rng.pick(GR_GIVEN).into(), Role::Given));
            if rng.chance(0.3) {
                parts.push(native_part(rng.pick(GR_GIVEN).into(), Role::Middle));
            }
            let pre = if rng.chance(0.2) { "Παπα" } else { "" };
            let root = rng.pick(GR_ROOT);
            let root = if pre.is_empty() {
                root.to_owned()
            } else {
                root.to_lowercase()
            };
            let sur = format!("{pre}{root}{}", rng.pick(GR_SUFFIX));
            parts.push(native_part(sur, Role::Surname));
        }
        Locale::Chinese => {
            let (sh, sl) = rng.pick(ZH_SURNAME);
            parts.push(part(vec![sl.into()], Some(sh.into()), Role::Surname));
            let (g1h, g1l) = rng.pick(ZH_GIVEN);
            let (gh, gl) = if rng.chance(0.7) {
                let (g2h, g2l) = rng.pick(ZH_GIVEN);
                (
                    format!("{g1h}{g2h}"),
                    vec![
                        capitalize(&format!("{g1l}{g2l}")),
                        format!("{} {}", capitalize(g1l), capitalize(g2l)),
                        format!("{}-{g2l}", capitalize(g1l)),
                    ],
                )
            } else {
                (g1h.to_owned(), vec![capitalize(g1l)])
            };
            parts.push(part(gl, Some(gh), Role::Given));
        }
        Locale::OrgLatin => {
            let core = if rng.chance(0.6) {
                let mut b = format!("{}{}", rng.pick(BRAND_A), rng.pick(BRAND_B));
                if rng.chance(0.3) {
                    b = format!("{b} {}{}", rng.pick(BRAND_A), rng.pick(BRAND_B));
                }
                b
            } else {
                format!(
                    "{} {}{}",
                    rng.pick(BRAND_WORD),
                    rng.pick(BRAND_A),
                    rng.pick(BRAND_B)
                )
            };
            parts.push(part(vec![core], None, Role::Core));
            let sectors = 1 + rng.below(2);
            for _ in 0..sectors {
                parts.push(part(vec![rng.pick(SECTOR).into()], None, Role::Sector));
            }
            parts.push(part(vec![rng.pick(LEGAL).into()], None, Role::Legal));
        }
        Locale::OrgRussian => {
            let form = rng.pick(RU_ORG_FORM);
            parts.push(native_part(form.into(), Role::Legal));
            let core = format!("«{}{}»", rng.pick(RU_ORG_A), rng.pick(RU_ORG_B));
            let core2 = if rng.chance(0.5) {
                format!(
                    "{} {}",
                    core,
                    capitalize(&format!("{}{}", rng.pick(RU_SYLL), rng.pick(RU_SYLL)))
                )
            } else {
                core
            };
            parts.push(native_part(core2, Role::Core));
        }
        Locale::OrgChinese => {
            let (ch, cl) = rng.pick(ZH_CITY);
            parts.push(part(vec![cl.into()], Some(ch.into()), Role::Core));
            let (a_h, a_l) = rng.pick(ZH_GIVEN);
            let (b_h, b_l) = rng.pick(ZH_GIVEN);
            parts.push(part(
                vec![capitalize(&format!("{a_l}{b_l}"))],
                Some(format!("{a_h}{b_h}")),
                Role::Core,
            ));
            let (sh, sl) = rng.pick(ZH_SECTOR);
            parts.push(part(vec![sl.into()], Some(sh.into()), Role::Sector));
            parts.push(part(
                vec![
                    "Co., Ltd.".into(),
                    "Youxian Gongsi".into(),
                    "Co. Ltd".into(),
                ],
                Some("有限公司".into()),
                Role::Legal,
            ));
        }
    }
    Persona { locale, parts }
}

impl Persona {
    /// Whether the locale has a native script.
    pub fn has_native(&self) -> bool {
        self.parts.iter().all(|p| p.native.is_some())
    }

    /// Renders the name.
    pub fn render(&self, r: &Rendering) -> String {
        let mut words = Vec::new();
        for (i, p) in self.parts.iter().enumerate() {
            if !r.include.get(i).copied().unwrap_or(true) {
                continue;
            }
            let w = match (r.script, &p.native) {
                (Script::Native, Some(n)) => n.clone(),
                _ => {
                    let k = r.spelling.get(i).copied().unwrap_or(0);
                    let k = if self.locale == Locale::Russian || self.locale == Locale::Greek {
                        usize::from(r.style).min(p.latin.len().saturating_sub(1))
                    } else {
                        k
                    };
                    p.latin
                        .get(k)
                        .or(p.latin.first())
                        .cloned()
                        .unwrap_or_default()
                }
            };
            words.push(w);
        }
        let joiner = if r.script == Script::Native
            && matches!(self.locale, Locale::Chinese | Locale::OrgChinese)
        {
            ""
        } else {
            " "
        };
        let s = words.join(joiner);
        if r.script == Script::Latin && self.locale == Locale::OrgRussian {
            s.replace(['«', '»'], "\"")
        } else {
            s
        }
    }

    /// A rendering with random spellings in `script`.
    pub fn rendering(&self, rng: &mut Rng, script: Script) -> Rendering {
        let spelling = self
            .parts
            .iter()
            .map(|p| {
                if rng.chance(0.6) {
                    0
                } else {
                    rng.below(p.latin.len())
                }
            })
            .collect();
        let style = match rng.below(10) {
            0..=4 => 1,
            5..=8 => 0,
            _ => 2,
        };
        Rendering {
            script,
            spelling,
            style: u8::try_from(style).unwrap_or(0),
            include: vec![true; self.parts.len()],
        }
    }

    /// A key that is equal for the same parts (for uniqueness).
    pub fn key(&self) -> String {
        let mut k: Vec<String> = self
            .parts
            .iter()
            .filter(|p| p.role != Role::Legal)
            .map(|p| p.latin.first().cloned().unwrap_or_default().to_lowercase())
            .collect();
        k.sort();
        k.join("|")
    }
}

/// Picks a locale with the benchmark's mix.
pub fn pick_locale(rng: &mut Rng) -> Locale {
    match rng.below(100) {
        0..=21 => Locale::Western,
        22..=35 => Locale::Russian,
        36..=53 => Locale::Arabic,
        54..=57 => Locale::Persian,
        58..=62 => Locale::Turkish,
        63..=65 => Locale::Greek,
        66..=74 => Locale::Chinese,
        75..=93 => Locale::OrgLatin,
        94..=96 => Locale::OrgRussian,
        _ => Locale::OrgChinese,
    }
}

/// One synthetic entry: the document and how its names were made.
#[derive(Clone, Debug)]
pub struct SynthEntry {
    /// The document indexed.
    pub doc: ScreenDoc,
    /// The subject.
    pub persona: Persona,
    /// How each listed name was rendered (same order as `doc.names`).
    pub renderings: Vec<Rendering>,
}

fn kind_of(locale: Locale) -> SubjectKind {
    match locale {
        Locale::OrgLatin | Locale::OrgRussian | Locale::OrgChinese => SubjectKind::Organization,
        _ => SubjectKind::Person,
    }
}

fn country_of(rng: &mut Rng, locale: Locale) -> &'static str {
    let pool: &[&str] = match locale {
        Locale::Western => &["DE", "FR", "IT", "ES", "GB", "NL", "PL", "HU", "SE"],
        Locale::Russian | Locale::OrgRussian => &["RU", "BY", "KZ", "UA"],
        Locale::Arabic => &["AE", "SA", "IQ", "SY", "LB", "EG", "JO", "QA"],
        Locale::Persian => &["IR"],
        Locale::Turkish => &["TR", "CY"],
        Locale::Greek => &["GR", "CY"],
        Locale::Chinese | Locale::OrgChinese => &["CN", "HK"],
        Locale::OrgLatin => &["AE", "HK", "SG", "TR", "CY", "MY", "GB", "DE", "UZ"],
    };
    rng.pick(pool)
}

/// Generates `n` entries from `seed`. Subjects are unique by their parts.
pub fn watchlist(n: usize, seed: u64) -> Vec<SynthEntry> {
    let mut rng = Rng::new(seed);
    let origins: Vec<AgencyCode> = ["AA-EXPORT", "BB-CUSTOMS", "CC-BAFA", "DD-TRADE"]
        .iter()
        .filter_map(|s| AgencyCode::new(*s).ok())
        .collect();
    let mut seen: HashSet<String> = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let mut i: u64 = 0;
    while out.len() < n {
        i += 1;
        let locale = pick_locale(&mut rng);
        let persona = persona(&mut rng, locale);
        if !seen.insert(persona.key()) {
            continue;
        }
        let native_primary = persona.has_native()
            && rng.chance(match locale {
                Locale::Chinese | Locale::OrgChinese => 0.4,
                Locale::Greek => 0.4,
                Locale::Russian | Locale::OrgRussian => 0.35,
                _ => 0.25,
            });
        let script = if native_primary {
            Script::Native
        } else {
            Script::Latin
        };
        let mut renderings = vec![persona.rendering(&mut rng, script)];
        if rng.chance(0.3) {
            let other = if persona.has_native() && rng.chance(0.6) {
                if script == Script::Native {
                    Script::Latin
                } else {
                    Script::Native
                }
            } else {
                Script::Latin
            };
            renderings.push(persona.rendering(&mut rng, other));
        }
        let mut names: Vec<String> = Vec::new();
        for r in &renderings {
            let name = persona.render(r);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let renderings: Vec<Rendering> =
            renderings.into_iter().take(names.len()).collect::<Vec<_>>();
        let kind = kind_of(locale);
        let country = CountryCode::new(country_of(&mut rng, locale)).ok();
        let birth_date = if kind == SubjectKind::Person && rng.chance(0.8) {
            let y = 1940 + rng.below(65);
            let s = if rng.chance(0.7) {
                format!("{y:04}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))
            } else {
                format!("{y:04}")
            };
            PartialDate::parse(&s).ok()
        } else {
            None
        };
        let identifiers = if rng.chance(0.3) {
            let kind = if kind == SubjectKind::Person {
                "passport"
            } else {
                "registration"
            };
            vec![Identifier {
                kind: kind.into(),
                value: format!("{}{:08}", char::from(b'A' + (i % 26) as u8), i),
            }]
        } else {
            Vec::new()
        };
        let mut id = [0u8; 16];
        for (d, b) in id
            .iter_mut()
            .zip(seed.to_le_bytes().into_iter().chain(i.to_le_bytes()))
        {
            *d = b;
        }
        let Some(origin) = origins.get(rng.below(origins.len())).cloned() else {
            return out;
        };
        let doc = ScreenDoc {
            entry_id: EntryId(id),
            origin,
            kind,
            names,
            country,
            nationality: None,
            birth_date,
            identifiers,
            addresses: Vec::new(),
            withdrawn: rng.chance(0.02),
            reason: None,
            categories: Vec::new(),
        };
        out.push(SynthEntry {
            doc,
            persona,
            renderings,
        });
    }
    out
}

// ---------------------------------------------------------------- queries

/// How a query was derived from a listed name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// One or two typing errors (substitution, deletion, insertion, transposition).
    Typo,
    /// Another script, or another romanisation or spelling.
    Transliteration,
    /// Tokens in another order (`SURNAME, Given`, reversed).
    TokenOrder,
    /// One middle name, patronymic or father's name left out.
    DroppedMiddle,
    /// Another legal form, abbreviated words, or no legal form.
    LegalForm,
    /// An honorific or title added in front.
    Honorific,
    /// The initials of an organisation's significant words (real-list runs only,
    /// reported on its own: not in the same-script or across-scripts figures).
    Acronym,
}

impl Variant {
    /// Every variant class.
    pub const ALL: &'static [Self] = &[
        Self::Typo,
        Self::Transliteration,
        Self::TokenOrder,
        Self::DroppedMiddle,
        Self::LegalForm,
        Self::Honorific,
    ];

    /// The classes of a real-list run: every class, and acronyms.
    pub const REAL: &'static [Self] = &[
        Self::Typo,
        Self::Transliteration,
        Self::TokenOrder,
        Self::DroppedMiddle,
        Self::LegalForm,
        Self::Honorific,
        Self::Acronym,
    ];

    /// The name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Typo => "typo",
            Self::Transliteration => "transliteration",
            Self::TokenOrder => "token_order",
            Self::DroppedMiddle => "dropped_middle",
            Self::LegalForm => "legal_form",
            Self::Honorific => "honorific",
            Self::Acronym => "acronym",
        }
    }
}

/// What kind of true negative a query is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NegativeKind {
    /// A new subject generated from the list's pools whose given name and surname (or
    /// core) are not listed together.
    Unlisted,
    /// The given name(s) of one listed person with the surname of another listed person
    /// of the same locale (middle names kept or dropped), not listed together.
    Recombined,
    /// A common name of one of several cultures that is not listed.
    Common,
}

impl NegativeKind {
    /// The name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unlisted => "unlisted",
            Self::Recombined => "recombined",
            Self::Common => "common",
        }
    }
}

/// A benchmark query with its ground truth.
#[derive(Clone, Debug)]
pub struct TestQuery {
    /// The name typed.
    pub name: String,
    /// How it was made; `None` for a true negative.
    pub variant: Option<Variant>,
    /// The entry it should find; `None` for a true negative.
    pub target: Option<EntryId>,
    /// The kind of true negative; `None` for a positive.
    pub negative: Option<NegativeKind>,
    /// A positive whose script differs from the listed name it was made from (Latin
    /// against Cyrillic, Arabic, Persian, Greek or Han).
    pub across_scripts: bool,
}

/// True when every letter of `s` is Latin (ASCII or Latin with diacritics).
pub fn latin_only(s: &str) -> bool {
    s.chars()
        .filter(|c| c.is_alphabetic())
        .all(|c| c.is_ascii() || matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}'))
}

fn is_letter_token(w: &str) -> bool {
    w.chars().filter(|c| c.is_alphabetic()).count() >= 4
}

/// Applies one typing error to a word.
fn typo_word(rng: &mut Rng, w: &str) -> String {
    let mut cs: Vec<char> = w.chars().collect();
    let letters: Vec<usize> = cs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_alphabetic())
        .map(|(i, _)| i)
        .collect();
    let Some(&pos) = letters.get(1 + rng.below(letters.len().saturating_sub(1))) else {
        return w.to_owned();
    };
    let random_letter = |rng: &mut Rng, like: char| {
        let c = char::from(b'a' + u8::try_from(rng.below(26)).unwrap_or(0));
        if like.is_uppercase() {
            c.to_ascii_uppercase()
        } else {
            c
        }
    };
    let at = cs.get(pos).copied().unwrap_or('a');
    match rng.below(4) {
        0 => {
            let mut c = random_letter(rng, at);
            if c.eq_ignore_ascii_case(&at) {
                c = if at.is_uppercase() { 'X' } else { 'x' };
            }
            if let Some(slot) = cs.get_mut(pos) {
                *slot = c;
            }
        }
        1 => {
            cs.remove(pos);
        }
        2 => {
            let c = if rng.chance(0.5) {
                at
            } else {
                random_letter(rng, at)
            };
            cs.insert(pos, c);
        }
        _ => {
            if pos + 1 < cs.len() {
                cs.swap(pos, pos + 1);
            } else {
                cs.swap(pos - 1, pos);
            }
        }
    }
    cs.into_iter().collect()
}

/// One or two typing errors in the words of four or more letters of `name`.
pub fn typo(rng: &mut Rng, name: &str) -> Option<String> {
    let mut words: Vec<String> = name.split(' ').map(str::to_owned).collect();
    let candidates: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|(_, w)| is_letter_token(w))
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let edits = if rng.chance(0.3) && candidates.len() >= 2 {
        2
    } else {
        1
    };
    let first = rng.below(candidates.len());
    for k in 0..edits {
        let Some(&i) = candidates.get((first + k) % candidates.len()) else {
            continue;
        };
        if let Some(w) = words.get_mut(i) {
            *w = typo_word(rng, w);
        }
    }
    Some(words.join(" "))
}

const ABBREVIATE: &[(&str, &str)] = &[
    ("Trading", "TRDG."),
    ("International", "INTL"),
    ("Industries", "IND."),
    ("Technologies", "TECH."),
    ("Technology", "TECH"),
    ("General", "GEN."),
    ("Engineering", "ENGG."),
    ("Manufacturing", "MFG"),
    ("Services", "SVCS"),
    ("Holdings", "HLDGS"),
    ("Group", "GRP"),
    ("Electronics", "ELEC."),
    ("Equipment", "EQUIP."),
    ("Systems", "SYS."),
];

impl SynthEntry {
    /// Makes a query of class `v` from listed name `k`, if the class applies.
    pub fn variant(&self, rng: &mut Rng, k: usize, v: Variant) -> Option<String> {
        let listed = self.doc.names.get(k)?;
        let r = self.renderings.get(k)?;
        let p = &self.persona;
        let person = kind_of(p.locale) == SubjectKind::Person;
        let abjad_or_han = matches!(
            p.locale,
            Locale::Arabic | Locale::Persian | Locale::Chinese | Locale::OrgChinese
        );
        let out = match v {
            Variant::Typo => {
                if r.script == Script::Native && abjad_or_han {
                    return None;
                }
                typo(rng, listed)?
            }
            Variant::Transliteration => {
                if p.has_native() {
                    let latin_again = r.script == Script::Latin
                        && matches!(p.locale, Locale::Arabic | Locale::Russian | Locale::Greek)
                        && rng.chance(0.4);
                    let script = if latin_again || r.script == Script::Native {
                        Script::Latin
                    } else {
                        Script::Native
                    };
                    let mut nr = p.rendering(rng, script);
                    nr.include = r.include.clone();
                    if latin_again && nr.style == r.style {
                        nr.style = (r.style + 1) % 3;
                    }
                    p.render(&nr)
                } else if p.locale == Locale::Turkish {
                    any_ascii::any_ascii(listed)
                } else {
                    return None;
                }
            }
            Variant::TokenOrder => {
                let words: Vec<&str> = listed.split(' ').collect();
                if words.len() < 2 {
                    return None;
                }
                if person && rng.chance(0.5) {
                    let (last, rest) = words.split_last()?;
                    format!("{}, {}", last.to_uppercase(), rest.join(" "))
                } else {
                    let mut w = words.clone();
                    w.reverse();
                    w.join(" ")
                }
            }
            Variant::DroppedMiddle => {
                let middles: Vec<usize> = p
                    .parts
                    .iter()
                    .enumerate()
                    .filter(|(i, part)| {
                        part.role == Role::Middle && r.include.get(*i).copied().unwrap_or(true)
                    })
                    .map(|(i, _)| i)
                    .collect();
                let drop = *middles.get(rng.below(middles.len()))?;
                let mut nr = r.clone();
                if let Some(slot) = nr.include.get_mut(drop) {
                    *slot = false;
                }
                p.render(&nr)
            }
            Variant::LegalForm => {
                if person {
                    return None;
                }
                let legal = p.parts.iter().position(|part| part.role == Role::Legal)?;
                let mut words = Vec::new();
                let new_form = match (p.locale, r.script) {
                    (Locale::OrgRussian, Script::Native) => {
                        if rng.chance(0.3) {
                            "LLC".to_owned()
                        } else {
                            rng.pick(RU_ORG_FORM).to_owned()
                        }
                    }
                    (Locale::OrgChinese, Script::Native) => {
                        if rng.chance(0.5) {
                            "公司".to_owned()
                        } else {
                            String::new()
                        }
                    }
                    _ => {
                        if rng.chance(0.15) {
                            String::new()
                        } else {
                            rng.pick(LEGAL).to_owned()
                        }
                    }
                };
                let abbreviate = rng.chance(0.4);
                let upper = rng.chance(0.3);
                let mut nr = r.clone();
                if let Some(slot) = nr.include.get_mut(legal) {
                    *slot = false;
                }
                for (i, part) in p.parts.iter().enumerate() {
                    if i == legal {
                        if !new_form.is_empty() {
                            words.push(new_form.clone());
                        }
                        continue;
                    }
                    let single = Persona {
                        locale: p.locale,
                        parts: vec![part.clone()],
                    };
                    let one = Rendering {
                        script: r.script,
                        spelling: vec![r.spelling.get(i).copied().unwrap_or(0)],
                        style: r.style,
                        include: vec![true],
                    };
                    let mut w = single.render(&one);
                    if abbreviate && part.role == Role::Sector {
                        for (long, short) in ABBREVIATE {
                            w = w.replace(long, short);
                        }
                    }
                    words.push(w);
                }
                let joiner = if r.script == Script::Native && p.locale == Locale::OrgChinese {
                    ""
                } else {
                    " "
                };
                let s = words.join(joiner);
                if upper { s.to_uppercase() } else { s }
            }
            Variant::Honorific => {
                if !person {
                    return None;
                }
                let pool = if matches!(p.locale, Locale::Arabic | Locale::Persian) {
                    HONORIFICS_AR
                } else {
                    HONORIFICS_LATIN
                };
                format!("{} {listed}", rng.pick(pool))
            }
            Variant::Acronym => return None,
        };
        (out != *listed && !out.trim().is_empty()).then_some(out)
    }

    /// A key of the subject's identity-bearing parts (given and surname, or core).
    fn core_key(persona: &Persona) -> String {
        let mut k: Vec<String> = persona
            .parts
            .iter()
            .filter(|p| matches!(p.role, Role::Given | Role::Surname | Role::Core))
            .map(|p| p.latin.first().cloned().unwrap_or_default().to_lowercase())
            .collect();
        k.sort();
        k.join("|")
    }
}

/// Makes `positives` variant queries (the classes in turn) and `negatives` unlisted
/// names.
pub fn queries(
    list: &[SynthEntry],
    positives: usize,
    negatives: usize,
    seed: u64,
) -> Vec<TestQuery> {
    let mut rng = Rng::new(seed ^ 0x5151_5151);
    let mut out = Vec::with_capacity(positives + negatives);
    if !list.is_empty() {
        let mut k = 0usize;
        let mut attempts = 0usize;
        while out.len() < positives && attempts < positives * 200 {
            attempts += 1;
            let Some(v) = Variant::ALL.get(k % Variant::ALL.len()).copied() else {
                break;
            };
            let Some(e) = list.get(rng.below(list.len())) else {
                continue;
            };
            if e.doc.withdrawn {
                continue;
            }
            let name_ix = if e.doc.names.len() > 1 && rng.chance(0.2) {
                1
            } else {
                0
            };
            if let Some(name) = e.variant(&mut rng, name_ix, v) {
                let listed = e.doc.names.get(name_ix).map(String::as_str).unwrap_or("");
                let across_scripts = latin_only(&name) != latin_only(listed);
                out.push(TestQuery {
                    name,
                    variant: Some(v),
                    target: Some(e.doc.entry_id),
                    negative: None,
                    across_scripts,
                });
                k += 1;
            }
        }
    }
    let listed: HashSet<String> = list
        .iter()
        .map(|e| SynthEntry::core_key(&e.persona))
        .collect();
    let mut made = 0;
    let mut attempts = 0;
    while made < negatives && attempts < negatives * 100 {
        attempts += 1;
        let locale = pick_locale(&mut rng);
        let p = persona(&mut rng, locale);
        if listed.contains(&SynthEntry::core_key(&p)) {
            continue;
        }
        let script = if p.has_native() && rng.chance(0.3) {
            Script::Native
        } else {
            Script::Latin
        };
        let r = p.rendering(&mut rng, script);
        out.push(TestQuery {
            name: p.render(&r),
            variant: None,
            target: None,
            negative: Some(NegativeKind::Unlisted),
            across_scripts: false,
        });
        made += 1;
    }
    out
}

/// Common given names and surnames of several cultures (Latin spellings as they are
/// usually written), combined at random into [`NegativeKind::Common`] negatives.
pub const COMMON: &[(&[&str], &[&str])] = &[
    // English
    (
        &[
            "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
        ],
        &[
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
        ],
    ),
    // Spanish and Latin American
    (
        &[
            "José", "María", "Juan", "Carmen", "Luis", "Ana", "Carlos", "Lucía",
        ],
        &[
            "García",
            "Rodríguez",
            "Martínez",
            "López",
            "González",
            "Pérez",
            "Sánchez",
            "Ramírez",
        ],
    ),
    // South Asian
    (
        &[
            "Rahul", "Priya", "Amit", "Sunita", "Ravi", "Anjali", "Sanjay", "Deepak",
        ],
        &[
            "Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Khan",
        ],
    ),
    // Vietnamese
    (
        &["Minh", "Lan", "Hung", "Thu", "Tuan", "Huong", "Duc", "Mai"],
        &[
            "Nguyen", "Tran", "Le", "Pham", "Hoang", "Phan", "Vu", "Dang",
        ],
    ),
    // Korean and Japanese
    (
        &[
            "Min-jun", "Ji-woo", "Seo-yeon", "Hiroshi", "Yuki", "Takashi", "Haruto", "Sakura",
        ],
        &[
            "Kim",
            "Lee",
            "Park",
            "Choi",
            "Sato",
            "Suzuki",
            "Takahashi",
            "Tanaka",
        ],
    ),
    // West African
    (
        &[
            "Chinedu",
            "Ngozi",
            "Oluwaseun",
            "Adebayo",
            "Kwame",
            "Ama",
            "Emeka",
            "Fatima",
        ],
        &[
            "Okafor", "Adeyemi", "Okonkwo", "Mensah", "Abubakar", "Bello", "Eze", "Boateng",
        ],
    ),
    // Arabic
    (
        &[
            "Mohamed", "Ahmed", "Fatima", "Aisha", "Youssef", "Omar", "Layla", "Hassan",
        ],
        &[
            "Hassan", "Ali", "Ibrahim", "Mahmoud", "Abdullah", "Saleh", "Haddad", "Mansour",
        ],
    ),
    // Turkish and Persian
    (
        &[
            "Mehmet", "Ayşe", "Mustafa", "Fatma", "Reza", "Zahra", "Hossein", "Maryam",
        ],
        &[
            "Yılmaz",
            "Kaya",
            "Demir",
            "Şahin",
            "Hosseini",
            "Mohammadi",
            "Karimi",
            "Rezaei",
        ],
    ),
    // Slavic
    (
        &[
            "Aleksandr",
            "Olga",
            "Sergei",
            "Natalia",
            "Piotr",
            "Anna",
            "Ivan",
            "Tatiana",
        ],
        &[
            "Ivanov",
            "Smirnova",
            "Kuznetsov",
            "Popova",
            "Nowak",
            "Kowalski",
            "Petrenko",
            "Novak",
        ],
    ),
    // German and French
    (
        &[
            "Hans", "Ursula", "Jürgen", "Claire", "Pierre", "Sophie", "Jean", "Monika",
        ],
        &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Martin",
            "Bernard",
            "Dubois",
            "Durand",
            "Weber",
        ],
    ),
    // Chinese (pinyin)
    (
        &["Wei", "Fang", "Min", "Jing", "Lei", "Yan", "Jun", "Ping"],
        &[
            "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao",
        ],
    ),
];

/// Makes `recombined` [`NegativeKind::Recombined`] and `common`
/// [`NegativeKind::Common`] true negatives (none of them listed with the same given
/// name and surname).
pub fn hard_negatives(
    list: &[SynthEntry],
    recombined: usize,
    common: usize,
    seed: u64,
) -> Vec<TestQuery> {
    let mut rng = Rng::new(seed ^ 0x0E6A_711E);
    let listed: HashSet<String> = list
        .iter()
        .map(|e| SynthEntry::core_key(&e.persona))
        .collect();
    let mut out = Vec::with_capacity(recombined + common);
    let persons: Vec<&SynthEntry> = list
        .iter()
        .filter(|e| kind_of(e.persona.locale) == SubjectKind::Person)
        .collect();
    let mut made = 0;
    let mut attempts = 0;
    while !persons.is_empty() && made < recombined && attempts < recombined * 100 {
        attempts += 1;
        let Some(a) = persons.get(rng.below(persons.len())) else {
            continue;
        };
        // another listed person of the same locale with another surname
        let mut b = None;
        for _ in 0..64 {
            if let Some(c) = persons.get(rng.below(persons.len()))
                && c.persona.locale == a.persona.locale
                && !std::ptr::eq(*c, *a)
            {
                b = Some(*c);
                break;
            }
        }
        let Some(b) = b else { continue };
        let Some(surname) = b.persona.parts.iter().find(|p| p.role == Role::Surname) else {
            continue;
        };
        let keep_middle = rng.chance(0.5);
        let parts: Vec<Part> = a
            .persona
            .parts
            .iter()
            .filter(|p| keep_middle || p.role != Role::Middle)
            .map(|p| {
                if p.role == Role::Surname {
                    surname.clone()
                } else {
                    p.clone()
                }
            })
            .collect();
        let p = Persona {
            locale: a.persona.locale,
            parts,
        };
        if listed.contains(&SynthEntry::core_key(&p)) {
            continue;
        }
        let script = if p.has_native() && rng.chance(0.3) {
            Script::Native
        } else {
            Script::Latin
        };
        let r = p.rendering(&mut rng, script);
        out.push(TestQuery {
            name: p.render(&r),
            variant: None,
            target: None,
            negative: Some(NegativeKind::Recombined),
            across_scripts: false,
        });
        made += 1;
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut made = 0;
    let mut attempts = 0;
    while made < common && attempts < common * 100 {
        attempts += 1;
        let Some((given, surnames)) = COMMON.get(rng.below(COMMON.len())) else {
            continue;
        };
        let g = rng.pick(given);
        let s = rng.pick(surnames);
        if g == s {
            continue;
        }
        let mut key = [g.to_lowercase(), s.to_lowercase()];
        key.sort();
        let key = key.join("|");
        if listed.contains(&key) || !seen.insert(key) {
            continue;
        }
        let name = if rng.chance(0.2) {
            format!("{} {g}", s.to_uppercase())
        } else {
            format!("{g} {s}")
        };
        out.push(TestQuery {
            name,
            variant: None,
            target: None,
            negative: Some(NegativeKind::Common),
            across_scripts: false,
        });
        made += 1;
    }
    out
}
