# The tutorial's interactive TCP chat server (one client, 'bye' ends); port 0, printed first.
import socket
sk = socket.socket()
sk.bind(('127.0.0.1', 0))
sk.listen()
print(sk.getsockname()[1], flush=True)
conn, addr = sk.accept()
while True:
    ret = conn.recv(1024)
    ret = ret.decode('utf-8')
    print(ret, flush=True)
    if ret == 'bye':
        break
    msg = input('服务端>>')
    conn.send(msg.encode('utf-8'))
    if msg == 'bye':
        break
conn.close()
sk.close()
