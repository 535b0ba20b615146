@echo off
rem tdkt for Windows: the month-end run (consolidate the open rounds, progress report, email),
rem for Task Scheduler. Uses the tdkt that tong-hop.cmd installed in .venv\ and the tdkt.toml
rem beside this file; writes into output\ and appends what it prints to
rem output\cuoi-thang.log. Extra arguments go to tdkt run (e.g. --dry-run).
rem This file must keep CRLF line ends and no byte order mark (tests/test_windows.py).
setlocal EnableExtensions DisableDelayedExpansion
chcp 65001 >nul
set "PYTHONIOENCODING=utf-8"
cd /d "%~dp0"

set "CONFIG=tdkt.toml"
set "OUT=output"
set "TDKT=.venv\Scripts\tdkt.exe"
set "LOG=output\cuoi-thang.log"

if not exist "%OUT%\" mkdir "%OUT%"
if not exist "%TDKT%" goto not_installed
if not exist "%CONFIG%" goto no_config
"%TDKT%" run --config "%CONFIG%" --out "%OUT%" %* >>"%LOG%" 2>&1
exit /b %ERRORLEVEL%

:not_installed
echo tdkt chưa được cài đặt: hãy nhấp đúp tong-hop.cmd một lần rồi chạy lại.>>"%LOG%"
echo tdkt chưa được cài đặt: hãy nhấp đúp tong-hop.cmd một lần rồi chạy lại.
exit /b 2

:no_config
echo Không tìm thấy tệp cấu hình %CONFIG% trong thư mục chứa cuoi-thang.cmd.>>"%LOG%"
echo Không tìm thấy tệp cấu hình %CONFIG% trong thư mục chứa cuoi-thang.cmd.
exit /b 2
