#!/usr/bin/python3
"""Bulk import and export (批量导入/导出) end to end against crmd on the embedded log: crmctl
imports GB18030 and UTF-8 files, reports bad rows by spreadsheet row number, exports CSV that
Python's csv module reads back (BOM, CRLF, quoting, neutralised formulas), re-imports the export
unchanged, resumes an import and refuses bad input; the streaming RPC is also driven directly
from Debian's python3-grpcio.

Run with /usr/bin/python3. Prints "N passed, N failed"; non-zero exit on failure.
"""
import argparse
import csv
import io
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import check, free_port, generate_protos, mint_token, status_details, summary, unary, wait_healthy, work_dir  # noqa: E402,E501


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crmd", required=True)
    ap.add_argument("--crmctl", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--google-protos", required=True)
    args = ap.parse_args()
    work = work_dir("crm-bulk-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc  # noqa: E402
    svc = m.svc

    key = "b" * 48
    port = free_port()
    addr = f"127.0.0.1:{port}"
    crmd = subprocess.Popen([args.crmd, "--data-dir", os.path.join(work, "data"), "--listen", addr,
                             "--metrics-listen", "", "--dashboard-listen", ""],
                            env=dict(os.environ, CRM_SIGNING_KEY=key),
                            stdout=open(os.path.join(work, "crmd.log"), "w"), stderr=subprocess.STDOUT)
    tokens = {"u1": mint_token(key, "u1", "rep", "east"), "u2": mint_token(key, "u2", "rep", "east"),
              "boss": mint_token(key, "boss", "admin")}

    def crmctl(user, *argv):
        env = dict(os.environ, CRM_ADDR=addr, CRM_TOKEN=tokens[user])
        p = subprocess.run([args.crmctl, *argv], env=env, capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def path(name):
        return os.path.join(work, name)

    def write(name, text, encoding="utf-8", bom=False):
        with open(path(name), "wb") as f:
            f.write((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
        return path(name)

    def read_csv(name):
        with open(path(name), "rb") as f:
            raw = f.read()
        assert raw.startswith(b"\xef\xbb\xbf"), raw[:10]
        text = raw[3:].decode("utf-8")
        # records end with CRLF (RFC 4180); bare LF only inside quoted cells
        assert text.endswith("\r\n") and "\n" not in text.split("\r\n", 1)[0], text[:200]
        return list(csv.reader(io.StringIO(text, newline="")))

    try:
        channel = wait_healthy(addr)

        def list_total(user):
            lst = unary(channel, "crm.customers.v1.CustomerService", "ListCustomers", svc.ListCustomersRequest,
                        svc.ListCustomersResponse)
            return lst(svc.ListCustomersRequest(page_size=1),
                       metadata=[("authorization", "Bearer " + tokens[user])]).total_size

        def gb18030_file_imports():
            lines = ["客户名称,手机,客户状态,行业,标签,备注"]
            for i in range(50):
                lines.append(f"华南贸易{i}号有限公司,1380000{i:04d},意向,批发和零售业,重点、华南,\"第一行\n第二行\"")
            f = write("gb.csv", "\r\n".join(lines) + "\r\n", encoding="gb18030")
            rc, out, err = crmctl("u1", "customers", "import", f)
            assert rc == 0, (rc, err)
            assert "gb18030" in err and "50 created" in err, err
            assert list_total("u1") == 50

        def bad_rows_are_reported_by_row_number():
            text = ("客户名称,手机,邮箱,备注\n"
                    "好客户,13900000001,,\n"           # row 2
                    "坏手机,12345,,\n"                  # row 3
                    "多行备注,13900000003,,\"一\n二\n三\"\n"  # row 4 spans three lines
                    "坏邮箱,13900000004,not-an-email,\n"    # row 5, line 8
                    ",,,\n"                              # blank: left out
                    "华南贸易0号,13900000007,,\n")       # row 7: same company as a gb.csv row
            f = write("bad.csv", text)
            rc, out, err = crmctl("u1", "customers", "import", f, "--errors", path("bad.errors.csv"))
            assert rc == 3, (rc, err)
            assert "2 created" in err and "1 skipped" in err and "2 failed" in err, err
            rows = read_csv("bad.errors.csv")
            assert rows[0][:6] == ["row", "result", "field", "column", "message", "customer"], rows[0]
            by_row = {r[0]: r for r in rows[1:]}
            assert by_row["3"][1:4] == ["failed", "phone", "手机"], by_row["3"]
            assert by_row["5"][1:4] == ["failed", "email", "邮箱"], by_row["5"]
            assert by_row["7"][1] == "skipped" and "company_name" in by_row["7"][4], by_row["7"]
            assert by_row["5"][6:] == ["坏邮箱", "13900000004", "not-an-email", ""], by_row["5"]

        def export_reads_back_and_reimports_unchanged():
            f = write("formula.csv", "客户名称,手机,备注\r\n公式客户,13700000001,=1+1\r\n\"引号\"\"客户\",13700000002,\"@x, -y\"\r\n",
                      bom=True)
            rc, _, err = crmctl("u1", "customers", "import", f)
            assert rc == 0, err
            rc, _, err = crmctl("u1", "customers", "export", "-f", path("out.csv"), "--order-by", "customer_number")
            assert rc == 0, err
            with open(path("out.csv"), "rb") as fh:
                raw = fh.read()
            assert raw.startswith(b"\xef\xbb\xbf")
            rows = read_csv("out.csv")
            header, body = rows[0], rows[1:]
            assert len(body) == list_total("u1") == 54, (len(body), list_total("u1"))
            col = {h: i for i, h in enumerate(header)}
            by_name = {r[col["客户名称"]]: r for r in body}
            assert by_name["公式客户"][col["备注"]] == "'=1+1"
            assert by_name['引号"客户'][col["备注"]] == "'@x, -y"
            assert by_name["华南贸易3号有限公司"][col["备注"]] == "第一行\n第二行"
            assert by_name["华南贸易3号有限公司"][col["行业"]] == "批发和零售业"
            rc, _, err = crmctl("u1", "customers", "import", path("out.csv"), "--policy", "update")
            assert rc == 0, err
            assert "0 created, 0 updated, 54 skipped, 0 failed" in err, err
            # another rep's export holds none of them
            rc, _, err = crmctl("u2", "customers", "export", "-f", path("u2.csv"))
            assert rc == 0 and len(read_csv("u2.csv")) == 1, err

        def dry_run_and_resume():
            f = write("resume.csv", "客户名称,手机\n甲,13600000001\n乙,13600000002\n")
            rc, _, err = crmctl("u1", "customers", "import", f, "--dry-run")
            assert rc == 0 and "dry run" in err and "2 created" in err, err
            assert list_total("u1") == 54
            rc, _, err = crmctl("u1", "customers", "import", f, "--import-id", "resume-1")
            assert rc == 0 and "2 created" in err, err
            rc, _, err = crmctl("u1", "customers", "import", f, "--import-id", "resume-1")
            assert rc == 0 and "2 skipped" in err, err
            rows = read_csv("resume.errors.csv")
            assert all(r[4] == "already imported under this import_id" for r in rows[1:]), rows

        def bad_input_fails_clearly():
            rc, _, err = crmctl("u1", "customers", "import", path("missing.csv"))
            assert rc == 2 and "cannot open" in err, (rc, err)
            rc, _, err = crmctl("u1", "customers", "import", path("gb.csv"), "--policy", "replace")
            assert rc == 2, (rc, err)
            with open(path("utf16.csv"), "wb") as fh:
                fh.write("客户名称\n甲\n".encode("utf-16"))
            rc, _, err = crmctl("u1", "customers", "import", path("utf16.csv"))
            assert rc == 2 and "UTF-16" in err, (rc, err)
            rc, _, err = crmctl("u1", "customers", "import", path("gb.csv"), "--encoding", "utf-8")
            assert rc == 2 and "not valid UTF-8" in err, (rc, err)
            rc, _, err = crmctl("u1", "customers", "import", path("gb.csv"), "--map", "手机=salary")
            assert rc == 1 and "options.mapping[手机]" in err, (rc, err)
            f = write("noname.csv", "手机\n13500000001\n")
            rc, _, err = crmctl("u1", "customers", "import", f)
            assert rc == 1 and "display_name" in err, (rc, err)
            f = write("unclosed.csv", "客户名称\n\"甲\n")
            rc, _, err = crmctl("u1", "customers", "import", f)
            assert rc == 2 and "never closed" in err, (rc, err)
            # a quote never closed half way: the rows before it are answered and reported
            f = write("half.csv", "客户名称,手机\n半途一,13300000001\n半途坏,123\n\"未闭合,13300000003\n")
            rc, _, err = crmctl("u2", "customers", "import", f, "--batch", "1")
            assert rc == 2 and "line 4: a quoted field is never closed" in err, (rc, err)
            assert [r[:2] for r in read_csv("half.errors.csv")[1:]] == [["3", "failed"]]
            rc, _, err = crmctl("u1", "customers", "export", "--filter", "colour = \"red\"")
            assert rc == 1 and "filter" in err, (rc, err)

        def raw_stream_protocol():
            call = channel.stream_stream("/crm.customers.v1.CustomerService/ImportCustomers",
                                         request_serializer=svc.ImportCustomersRequest.SerializeToString,
                                         response_deserializer=svc.ImportCustomersResponse.FromString)
            md = [("authorization", "Bearer " + tokens["boss"])]
            try:
                list(call(iter([svc.ImportCustomersRequest(rows=[svc.ImportRow(row_number=2, cells=["x"])])]),
                          metadata=md, timeout=10))
                raise AssertionError("a stream without options was accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
                st = status_details(e, m.status)
                bad = m.details.BadRequest()
                assert any(d.Unpack(bad) for d in st.details)
                assert bad.field_violations[0].field == "options"
            opts = svc.ImportOptions(columns=["name_col", "phone"], mapping={"name_col": "display_name"})
            msgs = [svc.ImportCustomersRequest(options=opts, rows=[svc.ImportRow(row_number=2, cells=["流式一", "13400000001"])]),
                    svc.ImportCustomersRequest(rows=[svc.ImportRow(row_number=3, cells=["流式二", "13400000002"]),
                                                     svc.ImportRow(row_number=4, cells=["流式三", "bad"])])]
            answers = list(call(iter(msgs), metadata=md, timeout=10))
            assert len(answers) == 3, answers
            assert answers[0].import_id and answers[0].mapping["phone"] == "phone"
            assert [r.row_number for r in answers[1].results] == [3, 4]
            assert answers[1].results[1].outcome == svc.IMPORT_OUTCOME_FAILED
            assert answers[2].done and answers[2].counts.created == 2 and answers[2].counts.failed == 1
            exp = channel.unary_stream("/crm.customers.v1.CustomerService/ExportCustomers",
                                       request_serializer=svc.ExportCustomersRequest.SerializeToString,
                                       response_deserializer=svc.ExportCustomersResponse.FromString)
            chunks = list(exp(svc.ExportCustomersRequest(columns=["display_name"], field_names=True),
                              metadata=md, timeout=10))
            assert chunks[0].columns == ["display_name"]
            assert chunks[-1].total_rows == sum(len(c.rows) for c in chunks) == 59, chunks[-1].total_rows

        def second_import_of_a_user_is_refused():
            import queue
            call = channel.stream_stream("/crm.customers.v1.CustomerService/ImportCustomers",
                                         request_serializer=svc.ImportCustomersRequest.SerializeToString,
                                         response_deserializer=svc.ImportCustomersResponse.FromString)
            md = [("authorization", "Bearer " + tokens["boss"])]
            opts = svc.ImportOptions(columns=["客户名称"])
            q = queue.Queue()
            q.put(svc.ImportCustomersRequest(options=opts))
            st = call(iter(q.get, None), metadata=md, timeout=20)
            assert next(st).import_id  # admitted and answered, and stays open
            try:
                list(call(iter([svc.ImportCustomersRequest(options=opts)]), metadata=md, timeout=10))
                raise AssertionError("a second concurrent import of one user was admitted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
            q.put(None)  # close our side; the server answers with done
            assert [a.done for a in st] == [True]
            # The server gives the slot back before it sends the end of the stream, so the next
            # import is served at once.
            assert list(call(iter([svc.ImportCustomersRequest(options=opts)]), metadata=md, timeout=10))[-1].done

        check("a GB18030 file with multi-line cells imports", gb18030_file_imports)
        check("bad rows are reported by spreadsheet row number, good rows imported", bad_rows_are_reported_by_row_number)
        check("the export reads back as CSV and re-imports unchanged", export_reads_back_and_reimports_unchanged)
        check("dry run writes nothing; a resumed import applies no row twice", dry_run_and_resume)
        check("bad files and flags fail clearly", bad_input_fails_clearly)
        check("the streaming RPCs from python3-grpcio", raw_stream_protocol)
        check("a second concurrent import of one user is refused with RESOURCE_EXHAUSTED", second_import_of_a_user_is_refused)
    finally:
        crmd.terminate()
        try:
            crmd.wait(timeout=20)
        except subprocess.TimeoutExpired:
            crmd.kill()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
