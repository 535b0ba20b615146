@echo off
rem tdkt for Windows: double-click to consolidate this office's folders.
rem Beside this file: tdkt.toml (the configuration), hop-thu\ (registrations, October) and
rem hop-thu-ket-qua\ (year-end results, May). Outputs go to output\, tdkt's own default. The
rem first run creates .venv\ and installs tdkt into it (Python 3.11 or later from python.org,
rem Internet needed); it is installed again whenever pyproject.toml changes (a new version).
rem This file must keep CRLF line ends and no byte order mark (tests/test_windows.py).
setlocal EnableExtensions DisableDelayedExpansion
chcp 65001 >nul
set "PYTHONIOENCODING=utf-8"
cd /d "%~dp0"

set "CONFIG=tdkt.toml"
set "INBOX=hop-thu"
set "RESULTS_INBOX=hop-thu-ket-qua"
set "OUT=output"
set "VENV_PYTHON=.venv\Scripts\python.exe"
set "TDKT=.venv\Scripts\tdkt.exe"
set "STAMP=.venv\tdkt-pyproject.toml"
set "STATUS=0"

if not exist "%CONFIG%" goto no_config
if not exist "%INBOX%\" if not exist "%RESULTS_INBOX%\" goto no_inbox
if not exist "%VENV_PYTHON%" goto install
if not exist "%TDKT%" goto install
fc /b "pyproject.toml" "%STAMP%" >nul 2>&1 || goto install
goto registration

:install
echo Đang cài đặt tdkt vào thư mục .venv (lần đầu cần mạng Internet, mất vài phút)...
if exist "%VENV_PYTHON%" goto pip_install
set "PYTHON="
py -3 -c "import sys; sys.exit(sys.version_info < (3, 11))" >nul 2>&1 && set "PYTHON=py -3"
if not defined PYTHON python -c "import sys; sys.exit(sys.version_info < (3, 11))" >nul 2>&1 && set "PYTHON=python"
if not defined PYTHON goto no_python
%PYTHON% -m venv .venv || goto install_failed
:pip_install
"%VENV_PYTHON%" -m pip install --quiet --disable-pip-version-check -e . || goto install_failed
if not exist "%TDKT%" goto install_failed
copy /y "pyproject.toml" "%STAMP%" >nul
echo Đã cài đặt xong.

:registration
echo.
if not exist "%INBOX%\" goto registration_skipped
dir /b /a-d "%INBOX%" 2>nul | findstr "^" >nul || goto registration_empty
echo === Đợt đăng ký thi đua: thư mục %INBOX% ===
"%TDKT%" consolidate "%INBOX%" --out "%OUT%" --config "%CONFIG%" || set "STATUS=1"
goto results
:registration_skipped
echo Chưa có thư mục %INBOX%: bỏ qua đợt đăng ký thi đua.
goto results
:registration_empty
echo Thư mục %INBOX% chưa có tệp nào: bỏ qua đợt đăng ký thi đua.

:results
echo.
if not exist "%RESULTS_INBOX%\" goto results_skipped
dir /b /a-d "%RESULTS_INBOX%" 2>nul | findstr "^" >nul || goto results_empty
echo === Đợt kết quả bình xét, đề nghị khen thưởng: thư mục %RESULTS_INBOX% ===
if exist "%INBOX%\" goto results_with_registrations
"%TDKT%" consolidate "%RESULTS_INBOX%" --round ket-qua --out "%OUT%" --config "%CONFIG%" || set "STATUS=1"
goto finished
:results_with_registrations
"%TDKT%" consolidate "%RESULTS_INBOX%" --round ket-qua --registrations "%INBOX%" --out "%OUT%" --config "%CONFIG%" || set "STATUS=1"
goto finished
:results_skipped
echo Chưa có thư mục %RESULTS_INBOX%: bỏ qua đợt kết quả bình xét.
goto finished
:results_empty
echo Thư mục %RESULTS_INBOX% chưa có tệp nào: bỏ qua đợt kết quả bình xét.

:finished
echo.
if not "%STATUS%"=="0" goto failed
echo Xong. Kết quả nằm trong thư mục %OUT% (theo năm học, mỗi đợt một thư mục).
if exist "%OUT%\" start "" "%OUT%"
goto end
:failed
echo Có đợt chưa tổng hợp được: đọc thông báo ở trên, sửa theo hướng dẫn rồi chạy lại.
goto end

:no_config
echo Không tìm thấy tệp cấu hình %CONFIG% trong thư mục chứa tong-hop.cmd.
echo Hãy chép input_samples\tdkt.toml vào đây, sửa tên cơ quan, năm học, danh mục đơn vị
echo (chép cả tệp danh mục đơn vị) rồi chạy lại. Xem README.md, mục “Trên Windows”.
set "STATUS=2"
goto end

:no_inbox
echo Không tìm thấy hộp thư: cần thư mục %INBOX% (bản đăng ký) hoặc %RESULTS_INBOX%
echo (bản kết quả bình xét) trong thư mục chứa tong-hop.cmd. Hãy tạo thư mục, chép nguyên
echo các tệp các trường gửi vào đó rồi chạy lại.
set "STATUS=2"
goto end

:no_python
echo Không tìm thấy Python 3.11 trở lên. Hãy cài Python từ https://www.python.org/downloads/
echo (khi cài, đánh dấu ô "Add python.exe to PATH") rồi chạy lại tong-hop.cmd.
set "STATUS=2"
goto end

:install_failed
echo Cài đặt tdkt không thành công. Hãy kiểm tra kết nối Internet rồi chạy lại; nếu vẫn lỗi,
echo xóa thư mục .venv rồi chạy lại.
set "STATUS=2"
goto end

:end
echo.
echo Nhấn phím bất kỳ để đóng cửa sổ này.
pause >nul
exit /b %STATUS%
