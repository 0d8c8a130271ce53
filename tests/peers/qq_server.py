# The tutorial's QQ-style UDP server: shows who wrote, replies to that writer with a line
# read from stdin. Port 0, printed first; stops at the end of stdin.
import socket
udp_server_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp_server_sock.bind(('127.0.0.1', 0))
print(udp_server_sock.getsockname()[1], flush=True)
while True:
    qq_msg, addr = udp_server_sock.recvfrom(1024)
    print('来自[%s:%s]的一条消息:%s' % (addr[0], addr[1], qq_msg.decode('utf-8')), flush=True)
    try:
        back_msg = input('回复消息: ').strip()
    except EOFError:
        break
    udp_server_sock.sendto(back_msg.encode('utf-8'), addr)
