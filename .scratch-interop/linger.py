import socket, subprocess, re, time, sys
p = subprocess.Popen(['build/herald','serve','--host','127.0.0.1','--port','0','--web-root','web','--max-body-size','1000'], stderr=subprocess.PIPE, text=True)
line = p.stderr.readline(); port = int(re.search(r'port=(\d+)', line).group(1))
for size_mb in (0.05, 1, 8):
    s = socket.create_connection(('127.0.0.1', port))
    total = int(size_mb * 1024 * 1024)
    s.sendall(b'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % total)
    sent = 0; err = None
    try:
        while sent < total:
            n = s.send(b'a' * min(65536, total - sent)); sent += n
    except Exception as e:
        err = repr(e)
    time.sleep(0.2)
    try:
        data = s.recv(65536)
    except Exception as e:
        data = repr(e).encode()
    print(f'body {total}: sent {sent} send-err {err} recv {data[:40]!r}')
    s.close()
p.terminate(); p.wait()
