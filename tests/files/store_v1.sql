-- A history store as tdkt wrote it at schema version 1 (before decisions, awards and links).
-- Built in the tests with executescript(), then opened with open_store() to test migration.
PRAGMA foreign_keys = ON;

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    school_year TEXT NOT NULL,
    round TEXT NOT NULL,
    run_at TEXT NOT NULL
);
CREATE TABLE inputs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    file TEXT NOT NULL, sha256 TEXT, unit_code TEXT, classification TEXT
);
CREATE TABLE units (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    unit_code TEXT NOT NULL, unit_name TEXT, level TEXT, block TEXT, status TEXT
);
CREATE TABLE persons (
    id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL, fold_name TEXT NOT NULL, birth_date TEXT, created_year TEXT
);
CREATE TABLE staff (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    person_id INTEGER REFERENCES persons(id),
    unit_code TEXT, row INTEGER, full_name TEXT, birth_date TEXT, sex TEXT,
    position TEXT, staff_group TEXT, grade TEXT
);
CREATE TABLE proposals (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    person_id INTEGER REFERENCES persons(id),
    unit_code TEXT, subject TEXT, name TEXT, kind TEXT, code TEXT, result TEXT
);
CREATE TABLE findings (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    file TEXT, sheet TEXT, cell TEXT, code TEXT, severity TEXT, value TEXT,
    expected TEXT, message TEXT, unit TEXT
);

INSERT INTO runs VALUES (1, '2024-2025', 'dang-ky', '2024-10-15T08:30:00+07:00');
INSERT INTO inputs VALUES (1, 'TH-HOA-BINH.xlsx', 'a3f1c2', 'TH01', 'accepted');
INSERT INTO units VALUES (1, 'TH01', 'Trường Tiểu học Hòa Bình', 'TH', 'Khối 1', 'accepted');
INSERT INTO persons VALUES (1, 'Nguyễn Thị Lan', 'nguyen thi lan', '1985-03-12', '2024-2025');
INSERT INTO persons VALUES (2, 'Trần Văn Đức', 'tran van duc', '1979-11-02', '2024-2025');
INSERT INTO staff VALUES (1, 1, 'TH01', 7, 'Nguyễn Thị Lan', '1985-03-12', 'Nữ', 'Giáo viên',
                          'GV', 'Hạng III');
INSERT INTO staff VALUES (1, 2, 'TH01', 8, 'Trần Văn Đức', '1979-11-02', 'Nam', 'Hiệu trưởng',
                          'QL', 'Hạng II');
INSERT INTO proposals VALUES (1, 1, 'TH01', 'person', 'Nguyễn Thị Lan', 'title', 'CSTĐCS',
                              'registered');
INSERT INTO proposals VALUES (1, 2, 'TH01', 'person', 'Trần Văn Đức', 'title', 'LĐTT',
                              'registered');
INSERT INTO proposals VALUES (1, NULL, 'TH01', 'collective', 'Tổ 1', 'collective_title',
                              'TLĐTT', 'registered');
INSERT INTO findings VALUES (1, 'TH-HOA-BINH.xlsx', 'Cá nhân', 'E9', 'not-in-list', 'error',
                             'LDTT', 'một trong: LĐTT, CSTĐCS', 'Giá trị không có trong danh mục.',
                             'TH01');

PRAGMA user_version = 1;
